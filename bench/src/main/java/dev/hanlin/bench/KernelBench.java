package dev.hanlin.bench;

import dev.hanlin.torch.Cuda;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.fused.BlockOps;
import dev.hanlin.torch.fused.NvrtcOps;
import dev.hanlin.torch.fused.ReferenceOps;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.bytedeco.pytorch.cuda.CUDAEvent;
import org.bytedeco.pytorch.cuda.CUDAStream;
import org.bytedeco.pytorch.global.torch_cuda;

/**
 * Issue 16: each fused kernel of the explicit block pass against the libtorch ops it replaces, GPU
 * time by CUDA events at TinyLlama-1.1B's shapes (N = batch·seq rows, hidden 2048, 32/4 heads of
 * 64, intermediate 5632, vocabulary 32000, bf16). Three columns per op:
 *
 * <ul>
 *   <li>libtorch: {@link ReferenceOps} on the GPU, the plain ops (what the CPU path runs);
 *   <li>NVRTC as BlockPass called it before: the kernels plus the copies around them that the
 *       explicit pass used to make (SwiGLU's {@code contiguous()} of the gate/up slices and the
 *       {@code cat} of its gradients; RoPE of q and k in two launches, the backward's transposes
 *       and the q/k/v {@code cat}; the residual add after each norm backward);
 *   <li>NVRTC now: the in-place / one-launch entry points ({@code swiglu} on the slices, {@code
 *       swigluBackwardJoined}, {@code ropeQk}, {@code ropeQkvBackward}, {@code rmsNormBackward}
 *       with the residual).
 * </ul>
 *
 * Plus the bytes an op must move at least (inputs read once, outputs written once) over its time:
 * how close to the card's memory bandwidth it runs. The old column runs on the NVRTC ops of any
 * version: with {@code old=only} this class touches nothing newer, so the same table can be made
 * against an older native-bindings jar for the kernels' before/after.
 *
 * <p>Usage: {@code KernelBench [batch=8] [seq=2048] [reps=20] [warmup=10] [old=yes|only]}; markdown
 * on stdout.
 */
public final class KernelBench {
  private final Device dev = Device.cuda(0);
  private final int reps, warmup;
  private final boolean newOps;
  private Tensor pad;

  private KernelBench(Map<String, String> a) {
    reps = Integer.parseInt(a.getOrDefault("reps", "20"));
    warmup = Integer.parseInt(a.getOrDefault("warmup", "10"));
    newOps = !a.getOrDefault("old", "yes").equals("only");
  }

  public static void main(String[] argv) {
    Map<String, String> a = new LinkedHashMap<>();
    for (String s : argv) {
      int eq = s.indexOf('=');
      if (eq < 0) throw new IllegalArgumentException("arguments are key=value: " + s);
      a.put(s.substring(0, eq), s.substring(eq + 1));
    }
    new KernelBench(a).run(a);
  }

  /** GPU milliseconds per call, pure device time (big matmuls queued ahead of the first event). */
  private double time(Runnable body) {
    if (body == null) return Double.NaN;
    for (int i = 0; i < warmup; i++) {
      try (Scope s = Scope.open()) {
        body.run();
      }
    }
    Torch.synchronize();
    CUDAStream stream = torch_cuda.getCurrentCUDAStream((byte) 0);
    CUDAEvent start = new CUDAEvent(0), end = new CUDAEvent(0);
    try (Scope s = Scope.open()) {
      for (int i = 0; i < 24; i++) pad.matmul(pad);
    }
    start.record(stream);
    for (int i = 0; i < reps; i++) {
      try (Scope s = Scope.open()) {
        body.run();
      }
    }
    end.record(stream);
    end.synchronize();
    return start.elapsed_time(end) / reps;
  }

  private record Row(String op, double bytes, double ref, double old, double now) {}

  private Tensor randn(long seed, DType d, double scale, long... shape) {
    return Torch.randn(Generator.cpu(seed), d, dev, shape).mul(scale).retain();
  }

  private void run(Map<String, String> a) {
    long batch = Long.parseLong(a.getOrDefault("batch", "8"));
    long seq = Long.parseLong(a.getOrDefault("seq", "2048"));
    long n = batch * seq, c = 2048, inter = 5632, v = 32000, h = 32, kv = 4, d = 64;
    DType bf = DType.BF16;
    double e = 2; // bytes per bf16 element
    Torch.zeros(DType.F32, dev, 1).close(); // the CUDA context, current on this thread
    NvrtcOps k = NvrtcOps.forDevice(dev);
    BlockOps ref = ReferenceOps.reference();
    pad = randn(99, bf, 1, 4096, 4096);
    Tensor x = randn(1, bf, 1, n, c), dl = randn(2, bf, 1, n, c), dy = randn(3, bf, 1, n, c);
    Tensor w = randn(4, bf, 0.1, c).add(1).retain();
    Tensor rstd = k.rmsNorm(x, w, 1e-5).rstd().retain();
    List<Row> rows = new ArrayList<>();
    rows.add(
        new Row(
            "RMSNorm fwd",
            2 * n * c * e,
            time(() -> ref.rmsNorm(x, w, 1e-5)),
            time(() -> k.rmsNorm(x, w, 1e-5)),
            Double.NaN));
    rows.add(
        new Row(
            "residual add + RMSNorm fwd",
            4 * n * c * e,
            time(() -> ref.addRmsNorm(x, dl, w, 1e-5)),
            time(() -> k.addRmsNorm(x, dl, w, 1e-5)),
            Double.NaN));
    rows.add(
        new Row(
            "RMSNorm bwd + residual grad",
            4 * n * c * e,
            time(() -> dl.add(ref.rmsNormBackward(dy, x, w, rstd).dx())),
            time(() -> dl.add(k.rmsNormBackward(dy, x, w, rstd).dx())),
            newOps ? time(() -> k.rmsNormBackward(dy, x, w, rstd, dl)) : Double.NaN));
    // q/k/v as the fused projection writes them: (B, T, (H+2KV)·D) rows
    long width = (h + 2 * kv) * d;
    Tensor qkv = randn(5, bf, 1, batch, seq, width);
    Tensor q = qkv.narrow(2, 0, h * d).view(batch, seq, h, d).transpose(1, 2).retain();
    Tensor kk = qkv.narrow(2, h * d, kv * d).view(batch, seq, kv, d).transpose(1, 2).retain();
    Tensor vv = qkv.narrow(2, (h + kv) * d, kv * d).view(batch, seq, kv, d).transpose(1, 2);
    vv.retain();
    Tensor ang = randn(6, DType.F32, 1, seq, d);
    Tensor cos = ang.cos().to(bf).retain(), sin = ang.sin().to(bf).retain();
    double qkBytes = 2 * n * (h + kv) * d * e;
    rows.add(
        new Row(
            "RoPE fwd (q, k)",
            qkBytes,
            time(
                () -> {
                  ref.rope(q, cos, sin);
                  ref.rope(kk, cos, sin);
                }),
            time(
                () -> {
                  k.rope(q, cos, sin);
                  k.rope(kk, cos, sin);
                }),
            newOps ? time(() -> k.ropeQk(q, kk, cos, sin)) : Double.NaN));
    // attention's gradients: (B, T, heads, D) memory viewed as (B, heads, T, D)
    Tensor dq = randn(7, bf, 1, batch, seq, h, d).transpose(1, 2).retain();
    Tensor dk = randn(8, bf, 1, batch, seq, kv, d).transpose(1, 2).retain();
    Tensor dv = randn(9, bf, 1, batch, seq, kv, d).transpose(1, 2).retain();
    rows.add(
        new Row(
            "RoPE bwd (q, k) to q/k/v rows",
            2 * n * width * e,
            time(() -> qkvRows(ref, dq, dk, dv, cos, sin, n)),
            time(() -> qkvRows(k, dq, dk, dv, cos, sin, n)),
            newOps ? time(() -> k.ropeQkvBackward(dq, dk, dv, cos, sin)) : Double.NaN));
    // gate/up as the fused GEMM writes them: (N, 2I)
    Tensor gu = randn(10, bf, 2, n, 2 * inter);
    Tensor g = gu.narrow(1, 0, inter).retain(), u = gu.narrow(1, inter, inter).retain();
    Tensor dyI = randn(11, bf, 1, n, inter);
    rows.add(
        new Row(
            "SwiGLU fwd (gate/up slices)",
            3 * n * inter * e,
            time(() -> ref.swiglu(g, u)),
            time(() -> k.swiglu(g.contiguous(), u.contiguous())),
            newOps ? time(() -> k.swiglu(g, u)) : Double.NaN));
    rows.add(
        new Row(
            "SwiGLU bwd to (N, 2I)",
            5 * n * inter * e,
            time(() -> joined(ref.swigluBackward(dyI, g, u))),
            time(() -> joined(k.swigluBackward(dyI, g.contiguous(), u.contiguous()))),
            newOps ? time(() -> k.swigluBackwardJoined(dyI, g, u)) : Double.NaN));
    Tensor logits = randn(12, bf, 4, n, v);
    long[] lab = new long[(int) n];
    java.util.Random r = new java.util.Random(13);
    for (int i = 0; i < n; i++) lab[i] = r.nextInt((int) v);
    Tensor labels = Torch.fromLongs(lab, n).to(dev).retain();
    rows.add(
        new Row(
            "cross-entropy fwd+bwd (N, 32000)",
            2 * n * v * e,
            time(() -> ref.crossEntropy(logits, labels, 1.0 / n)),
            time(() -> k.crossEntropy(logits, labels, 1.0 / n)),
            Double.NaN));
    print(rows, batch, seq);
  }

  /** The q/k/v projection's output gradient as BlockPass made it before: RoPE, transposes, cat. */
  private static Tensor qkvRows(
      BlockOps ops, Tensor dq, Tensor dk, Tensor dv, Tensor cos, Tensor sin, long n) {
    return Torch.cat(
        List.of(
            rows(ops.ropeBackward(dq, cos, sin), n),
            rows(ops.ropeBackward(dk, cos, sin), n),
            rows(dv, n)),
        1);
  }

  private static Tensor rows(Tensor heads, long n) {
    return heads.transpose(1, 2).reshape(n, heads.size(1) * heads.size(3));
  }

  private static Tensor joined(BlockOps.SwigluGrads g) {
    return Torch.cat(List.of(g.dgate(), g.dup()), 1);
  }

  private static void print(List<Row> rows, long batch, long seq) {
    var o = System.out;
    o.printf(
        Locale.ROOT,
        "## Fused kernels vs libtorch: TinyLlama-1.1B shapes, N = %d x %d rows, bf16, %s (%s)%n%n",
        batch,
        seq,
        Cuda.deviceName(0),
        java.time.Instant.now().toString().substring(0, 16));
    o.println(
        "| op | min bytes | libtorch ms | NVRTC as called before ms | NVRTC now ms | now GB/s"
            + " | libtorch / now |");
    o.println("|---|---|---|---|---|---|---|");
    double sumRef = 0, sumOld = 0, sumNow = 0;
    for (Row r : rows) {
      double now = Double.isNaN(r.now()) ? r.old() : r.now();
      sumRef += r.ref();
      sumOld += r.old();
      sumNow += now;
      o.printf(
          Locale.ROOT,
          "| %s | %.0f MB | %.3f | %.3f | %s | %.0f | %.2fx |%n",
          r.op(),
          r.bytes() / 1e6,
          r.ref(),
          r.old(),
          Double.isNaN(r.now()) ? "(same call) " + fmt(r.old()) : fmt(r.now()),
          r.bytes() / (now * 1e-3) / 1e9,
          r.ref() / now);
    }
    o.printf(
        Locale.ROOT,
        "| **sum** | | **%.3f** | **%.3f** | **%.3f** | | %.2fx |%n",
        sumRef,
        sumOld,
        sumNow,
        sumRef / sumNow);
    o.println();
    o.println(
        "Per step at this batch the block ops run 22 times (1 each; RMSNorm bwd twice), the loss"
            + " once. GB/s: least bytes moved / time (H200 HBM3e peak ~4800 GB/s).");
  }

  private static String fmt(double ms) {
    return String.format(Locale.ROOT, "%.3f", ms);
  }
}
