package dev.hanlin.bench;

import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Cuda;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.cuda.KernelCache;
import dev.hanlin.torch.fused.NvrtcOps;
import dev.hanlin.torch.optim.FusedAdamW;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.TensorArrayRefOptional;
import org.bytedeco.pytorch.cuda.CUDAEvent;
import org.bytedeco.pytorch.cuda.CUDAStream;
import org.bytedeco.pytorch.global.torch_cuda;

/**
 * Issue 16, item 1: where one training step's GPU time goes. Times each part of one Llama block's
 * forward and backward at the real shapes (TinyLlama-1.1B, bf16), the head with the loss and the
 * AdamW step over the model's parameters, with CUDA events, each part with libtorch's ops (as the
 * model runs them today; elementwise backwards through autograd) and with the NVRTC kernels ({@link
 * NvrtcOps}) side by side; then the model's whole forward+backward the same way, and, when given,
 * the real trainer's step time. Gap = step − sum of parts: time the GPU does not spend in a listed
 * kernel (launch latency, host work, allocator, copies, the parts left out: embedding, clipping).
 *
 * <p>GPU times are pure device time: a queue of big matmuls is enqueued before the first event, so
 * the host has issued every repetition before the device reaches them. Host time is the time to
 * issue one call; where it exceeds the GPU time the part is launch-bound, the case CUDA graphs
 * would help.
 *
 * <p>Usage: {@code StepProfile [batch=4] [seq=2048] [reps=10] [warmup=30] [preset=tinyllama]
 * [trainer_step_ms=X]}; writes a markdown table to stdout. Each part runs {@code warmup} times
 * before it is timed (the model's whole step 3 times): with fewer, the JIT has not compiled the
 * host path yet and the host column measures the interpreter (bench/NvrtcHostCost shows the
 * difference: hundreds of µs for an op's first calls, tens after).
 */
public final class StepProfile {
  private final Map<String, String> args;
  private final int reps;
  private final int warmup;
  private final Device dev = Device.cuda(0);
  private Tensor padA;
  private double kernelsReadyMs;

  private StepProfile(Map<String, String> args) {
    this.args = args;
    this.reps = Integer.parseInt(args.getOrDefault("reps", "10"));
    this.warmup = Integer.parseInt(args.getOrDefault("warmup", "30"));
  }

  public static void main(String[] argv) {
    Map<String, String> a = new LinkedHashMap<>();
    for (String s : argv) {
      int eq = s.indexOf('=');
      if (eq < 0) throw new IllegalArgumentException("arguments are key=value: " + s);
      a.put(s.substring(0, eq), s.substring(eq + 1));
    }
    new StepProfile(a).run();
  }

  /** GPU milliseconds and host microseconds per call. */
  record Timing(double gpuMs, double hostUs) {}

  /** One row: a part run {@code perStep} times a step, by libtorch and (if not null) fused. */
  record Row(String part, int perStep, Timing ref, Timing fused) {}

  private Timing time(Runnable body) {
    return time(body, warmup);
  }

  private Timing time(Runnable body, int warmups) {
    for (int i = 0; i < warmups; i++) {
      try (Scope s = Scope.open()) {
        body.run();
      }
    }
    Torch.synchronize();
    CUDAStream stream = torch_cuda.getCurrentCUDAStream((byte) 0);
    CUDAEvent start = new CUDAEvent(0), end = new CUDAEvent(0);
    try (Scope s = Scope.open()) {
      for (int i = 0; i < 24; i++) padA.matmul(padA); // ~30 ms of device work ahead of the host
    }
    long h0 = System.nanoTime();
    start.record(stream);
    for (int i = 0; i < reps; i++) {
      try (Scope s = Scope.open()) {
        body.run();
      }
    }
    end.record(stream);
    long h1 = System.nanoTime();
    end.synchronize();
    return new Timing(start.elapsed_time(end) / reps, (h1 - h0) / 1e3 / reps);
  }

  private static void backward(Tensor y, Tensor dy) {
    y.raw().backward(dy.raw(), new BoolOptional(true), false, new TensorArrayRefOptional());
  }

  private Tensor randn(long seed, DType dtype, double scale, long... shape) {
    return Torch.randn(Generator.cpu(seed), dtype, dev, shape).mul(scale).retain();
  }

  private static Tensor leaf(Tensor t) {
    return t.detach().requiresGrad(true).retain();
  }

  private static Tensor refNorm(Tensor x, Tensor w, double eps) {
    Tensor xf = x.toFloat();
    return w.mul(xf.mul(xf.mul(xf).mean(-1, true).add(eps).rsqrt()).to(x.dtype()));
  }

  private static Tensor refRope(Tensor x, Tensor cos, Tensor sin) {
    long h = x.size(-1) / 2;
    Tensor rot = Torch.cat(List.of(x.narrow(-1, h, h).neg(), x.narrow(-1, 0, h)), -1);
    return x.mul(cos).add(rot.mul(sin));
  }

  private void run() {
    LlamaConfig c =
        args.getOrDefault("preset", "tinyllama").equals("llama2-7b")
            ? LlamaConfig.llama2_7b()
            : LlamaConfig.tinyLlama1b();
    long b = Long.parseLong(args.getOrDefault("batch", "4"));
    long t = Long.parseLong(args.getOrDefault("seq", "2048"));
    long n = b * t, hid = c.hiddenSize(), inter = c.intermediateSize(), v = c.vocabSize();
    int h = c.numAttentionHeads(), kvh = c.numKeyValueHeads(), d = c.headDim();
    DType bf = DType.BF16;
    padA = randn(99, bf, 0.01, 8192, 8192);
    long k0 = System.nanoTime();
    NvrtcOps ops = NvrtcOps.forDevice(dev);
    kernelsReadyMs = (System.nanoTime() - k0) / 1e6;
    double eps = c.rmsNormEps();

    // activations and weights of one block, (B, T, C) flattened to (N, C) where the ops want rows
    Tensor x = randn(1, bf, 1, n, hid);
    Tensor wNorm = randn(2, bf, 0.1, hid).add(1).retain();
    Tensor wq = randn(3, bf, 0.02, (long) h * d, hid), wk = randn(4, bf, 0.02, (long) kvh * d, hid);
    Tensor wv = randn(5, bf, 0.02, (long) kvh * d, hid), wo = randn(6, bf, 0.02, hid, (long) h * d);
    Tensor wg = randn(7, bf, 0.02, inter, hid), wu = randn(8, bf, 0.02, inter, hid);
    Tensor wd = randn(9, bf, 0.02, hid, inter), head = randn(10, bf, 0.02, v, hid);
    Tensor ang = randn(11, DType.F32, 3, t, d);
    Tensor cos = ang.cos().to(bf).retain(), sin = ang.sin().to(bf).retain();
    Tensor xn = Torch.linear(x, wq, null).retain(); // stand-in normed input (N, C)
    Tensor q = Torch.linear(xn, wq, null).view(b, t, h, d).transpose(1, 2).retain();
    Tensor k = Torch.linear(xn, wk, null).view(b, t, kvh, d).transpose(1, 2).retain();
    Tensor vv = Torch.linear(xn, wv, null).view(b, t, kvh, d).transpose(1, 2).retain();
    Tensor qr = q.contiguous().retain(),
        kr = k.contiguous().retain(),
        vr = vv.contiguous().retain();
    Tensor g = randn(12, bf, 1, n, inter), u = randn(13, bf, 1, n, inter);
    Tensor act = Torch.silu(g).mul(u).retain();
    Tensor dyC = randn(14, bf, 0.01, n, hid), dyI = randn(15, bf, 0.01, n, inter);
    Tensor dyQ = randn(16, bf, 0.01, b, h, t, d), dyK = randn(17, bf, 0.01, b, kvh, t, d);
    Tensor attnOut = randn(18, bf, 1, n, (long) h * d);
    long[] lab = new long[(int) n];
    for (int i = 0; i < n; i++) lab[i] = (i * 7919L) % v;
    Tensor labels = Torch.fromLongs(lab, n).to(dev).retain();
    Tensor logits = Torch.linear(x, head, null).retain(); // (N, V)

    // autograd graphs for the reference backwards (kept, replayed with retain_graph)
    Tensor xL = leaf(x), wL = leaf(wNorm);
    Tensor normY = refNorm(xL, wL, eps).retain();
    Tensor qL = leaf(q), kL = leaf(k);
    Tensor ropeQ = refRope(qL, cos, sin).retain(), ropeK = refRope(kL, cos, sin).retain();
    Tensor gL = leaf(g), uL = leaf(u);
    Tensor swY = Torch.silu(gL).mul(uL).retain();
    Tensor qa = leaf(qr), ka = leaf(kr), va = leaf(vr);
    Tensor attY = Torch.scaledDotProductAttention(qa, ka, va, true).retain();
    Tensor logitsL = leaf(logits);
    var normed = ops.rmsNorm(x, wNorm, eps);
    Tensor rstd = normed.rstd().retain();

    List<Row> layer = new ArrayList<>();
    List<Row> once = new ArrayList<>();
    // ---- forward ----
    layer.add(
        new Row(
            "RMSNorm fwd",
            1,
            time(() -> refNorm(x, wNorm, eps)),
            time(() -> ops.rmsNorm(x, wNorm, eps))));
    layer.add(
        new Row(
            "q/k/v GEMMs fwd",
            1,
            time(
                () -> {
                  Torch.linear(xn, wq, null);
                  Torch.linear(xn, wk, null);
                  Torch.linear(xn, wv, null);
                }),
            null));
    layer.add(
        new Row(
            "RoPE fwd (q, k)",
            1,
            time(
                () -> {
                  refRope(q, cos, sin);
                  refRope(k, cos, sin);
                }),
            time(() -> ops.ropeQk(q, k, cos, sin)))); // one launch, attention's layout
    layer.add(
        new Row(
            "attention fwd (SDPA)",
            1,
            time(() -> Torch.scaledDotProductAttention(qr, kr, vr, true)),
            null));
    layer.add(new Row("o GEMM fwd", 1, time(() -> Torch.linear(attnOut, wo, null)), null));
    layer.add(
        new Row(
            "residual add + RMSNorm fwd",
            1,
            time(() -> refNorm(x.add(dyC), wNorm, eps)),
            time(() -> ops.addRmsNorm(x, dyC, wNorm, eps))));
    layer.add(
        new Row(
            "gate/up GEMMs fwd",
            1,
            time(
                () -> {
                  Torch.linear(x, wg, null);
                  Torch.linear(x, wu, null);
                }),
            null));
    layer.add(
        new Row("SwiGLU fwd", 1, time(() -> Torch.silu(g).mul(u)), time(() -> ops.swiglu(g, u))));
    layer.add(new Row("down GEMM fwd", 1, time(() -> Torch.linear(act, wd, null)), null));
    layer.add(new Row("residual add", 1, time(() -> x.add(dyC)), null));
    // ---- backward: a linear y = x W^T has dx = dy W and dW = dy^T x ----
    layer.add(
        new Row(
            "down GEMM bwd (dx, dW)",
            1,
            time(
                () -> {
                  dyC.matmul(wd);
                  dyC.transpose(0, 1).matmul(act);
                }),
            null));
    layer.add(
        new Row(
            "SwiGLU bwd",
            1,
            time(
                () -> {
                  gL.clearGrad();
                  uL.clearGrad();
                  backward(swY, dyI);
                }),
            time(() -> ops.swigluBackwardJoined(dyI, g, u)))); // into the (N, 2I) gradient
    layer.add(
        new Row(
            "gate/up GEMMs bwd (dx, dW)",
            1,
            time(
                () -> {
                  dyI.matmul(wg).add(dyI.matmul(wu));
                  dyI.transpose(0, 1).matmul(x);
                  dyI.transpose(0, 1).matmul(x);
                }),
            null));
    layer.add(
        new Row(
            "RMSNorm bwd",
            2,
            time(
                () -> {
                  xL.clearGrad();
                  wL.clearGrad();
                  backward(normY, dyC);
                }),
            // with the residual's gradient added, as the explicit pass calls it
            time(() -> ops.rmsNormBackward(dyC, x, wNorm, rstd, dyC))));
    layer.add(
        new Row(
            "o GEMM bwd (dx, dW)",
            1,
            time(
                () -> {
                  dyC.matmul(wo);
                  dyC.transpose(0, 1).matmul(attnOut);
                }),
            null));
    layer.add(
        new Row(
            "attention bwd (SDPA)",
            1,
            time(
                () -> {
                  qa.clearGrad();
                  ka.clearGrad();
                  va.clearGrad();
                  backward(attY, dyQ);
                }),
            null));
    layer.add(
        new Row(
            "RoPE bwd (q, k)",
            1,
            time(
                () -> {
                  qL.clearGrad();
                  kL.clearGrad();
                  backward(ropeQ, dyQ);
                  backward(ropeK, dyK);
                }),
            // q and k in one launch, written with dv as the q/k/v projection's gradient rows
            time(() -> ops.ropeQkvBackward(dyQ, dyK, dyK, cos, sin))));
    Tensor dq = dyQ.transpose(1, 2).reshape(n, (long) h * d).retain();
    Tensor dk = dyK.transpose(1, 2).reshape(n, (long) kvh * d).retain();
    layer.add(
        new Row(
            "q/k/v GEMMs bwd (dx, dW)",
            1,
            time(
                () -> {
                  dq.matmul(wq).add(dk.matmul(wk)).add(dk.matmul(wv));
                  dq.transpose(0, 1).matmul(xn);
                  dk.transpose(0, 1).matmul(xn);
                  dk.transpose(0, 1).matmul(xn);
                }),
            null));
    // ---- once a step ----
    once.add(new Row("final RMSNorm fwd", 1, layer.get(0).ref, layer.get(0).fused));
    once.add(new Row("head GEMM fwd", 1, time(() -> Torch.linear(x, head, null)), null));
    double scale = 1.0 / n;
    once.add(
        new Row(
            "cross-entropy fwd+bwd",
            1,
            time(
                () -> {
                  logitsL.clearGrad();
                  Torch.crossEntropy(logitsL.toFloat(), labels).backward();
                }),
            time(() -> ops.crossEntropy(logits, labels, scale))));
    once.add(
        new Row(
            "head GEMM bwd (dx, dW)",
            1,
            time(
                () -> {
                  logits.matmul(head);
                  logits.transpose(0, 1).matmul(x);
                }),
            null));
    once.add(new Row("final RMSNorm bwd", 1, layer.get(13).ref, layer.get(13).fused));
    once.add(new Row("AdamW step (fused, fp32 masters)", 1, adamW(c), null));

    double[] model = modelStep(c, b, t);
    print(c, b, t, layer, once, model);
  }

  /** aten::_fused_adamw_ over fp32 masters of the model's parameter shapes. */
  private Timing adamW(LlamaConfig c) {
    List<long[]> shapes = new ArrayList<>();
    long hid = c.hiddenSize(), kvd = (long) c.numKeyValueHeads() * c.headDim();
    long qd = (long) c.numAttentionHeads() * c.headDim(), inter = c.intermediateSize();
    for (int i = 0; i < c.numHiddenLayers(); i++) {
      shapes.addAll(
          List.of(
              new long[] {qd, hid},
              new long[] {kvd, hid},
              new long[] {kvd, hid},
              new long[] {hid, qd},
              new long[] {inter, hid},
              new long[] {inter, hid},
              new long[] {hid, inter},
              new long[] {hid},
              new long[] {hid}));
    }
    shapes.add(new long[] {c.vocabSize(), hid});
    shapes.add(new long[] {c.vocabSize(), hid});
    shapes.add(new long[] {hid});
    List<Tensor> p = new ArrayList<>(), gr = new ArrayList<>(), m = new ArrayList<>();
    List<Tensor> s2 = new ArrayList<>(), steps = new ArrayList<>();
    for (long[] s : shapes) {
      p.add(Torch.zeros(DType.F32, dev, s).retain());
      gr.add(Torch.full(1e-3, DType.F32, dev, s).retain());
      m.add(Torch.zeros(DType.F32, dev, s).retain());
      s2.add(Torch.zeros(DType.F32, dev, s).retain());
      steps.add(Torch.zeros(DType.F32, dev).retain());
    }
    var betas = new FusedAdamW.Betas(0.9, 0.95, 1e-8);
    return time(() -> FusedAdamW.step(p, gr, m, s2, steps, 4e-4, 0.1, betas, null, null));
  }

  /** The model's forward+backward (bf16, HF's loss): GPU ms and host-issue ms per step. */
  private double[] modelStep(LlamaConfig c, long b, long t) {
    LlamaModel model = LlamaModel.init(c, 0, DType.BF16, dev);
    for (Tensor w : model.weights().values()) w.requiresGrad(true);
    Tensor ids =
        Torch.randn(Generator.cpu(1), DType.F32, Device.CPU, b, t + 1)
            .abs()
            .mul(1000)
            .to(DType.I64)
            .to(dev)
            .retain();
    Timing tm =
        time(
            () -> {
              Tensor logits = model.forward(ids.narrow(1, 0, t), null);
              Torch.crossEntropy(
                      logits.reshape(-1, c.vocabSize()).toFloat(), ids.narrow(1, 1, t).reshape(-1))
                  .backward();
              for (Tensor w : model.weights().values()) w.clearGrad();
            },
            3);
    return new double[] {tm.gpuMs(), tm.hostUs() / 1e3};
  }

  private void print(
      LlamaConfig c, long b, long t, List<Row> layer, List<Row> once, double[] model) {
    int layers = c.numHiddenLayers();
    StringBuilder o = new StringBuilder();
    o.append(
        String.format(
            Locale.ROOT,
            "## Step profile: %s shape, micro-batch %d, seq %d, bf16, %s (%d reps a part after %d"
                + " warm-up calls)%n%n",
            c.numHiddenLayers() == 22 ? "TinyLlama-1.1B" : "Llama-2-7B",
            b,
            t,
            String.valueOf(Cuda.deviceName(0)),
            reps,
            warmup));
    o.append(
        "| part | per step | libtorch GPU ms | NVRTC GPU ms | libtorch host µs/call |"
            + " NVRTC host µs/call | libtorch ms/step | NVRTC ms/step |\n");
    o.append("|---|---|---|---|---|---|---|---|\n");
    double sumRef = 0, sumFused = 0;
    for (boolean perLayer : new boolean[] {true, false}) {
      for (Row r : perLayer ? layer : once) {
        int times = r.perStep * (perLayer ? layers : 1);
        Timing f = r.fused == null ? r.ref : r.fused;
        sumRef += r.ref.gpuMs * times;
        sumFused += f.gpuMs * times;
        o.append(
            String.format(
                Locale.ROOT,
                "| %s | %s | %.3f | %s | %.0f | %s | %.2f | %.2f |%n",
                r.part,
                perLayer ? layers + "×" + r.perStep : "1",
                r.ref.gpuMs,
                r.fused == null ? "" : String.format(Locale.ROOT, "%.3f", r.fused.gpuMs),
                r.ref.hostUs,
                r.fused == null ? "" : String.format(Locale.ROOT, "%.0f", r.fused.hostUs),
                r.ref.gpuMs * times,
                f.gpuMs * times));
      }
    }
    double adam = once.get(once.size() - 1).ref.gpuMs;
    o.append(
        String.format(
            Locale.ROOT,
            "| **sum of parts** | | | | | | **%.1f** | **%.1f** |%n%n",
            sumRef,
            sumFused));
    o.append(
        String.format(
            Locale.ROOT,
            "Model forward+backward (LlamaModel, libtorch ops, no optimizer): %.1f ms GPU, %.1f ms"
                + " to issue on the host; with the AdamW part: %.1f ms. Gap (that + AdamW − sum of"
                + " libtorch parts): %.1f ms.%n",
            model[0],
            model[1],
            model[0] + adam,
            model[0] + adam - sumRef));
    String trainer = args.get("trainer_step_ms");
    if (trainer != null) {
      double s = Double.parseDouble(trainer);
      o.append(
          String.format(
              Locale.ROOT,
              "Trainer step (bench/pretrain-tinyllama.yaml, from its tokens/s): %.1f ms; gap to the"
                  + " sum of libtorch parts %.1f ms (%.0f %%); the NVRTC parts would save %.1f ms.%n",
              s,
              s - sumRef,
              100 * (s - sumRef) / s,
              sumRef - sumFused));
    }
    o.append(
        String.format(
            Locale.ROOT,
            "Launch-bound parts (host issue time > GPU time): %s.%n",
            launchBound(layer, once)));
    o.append(
        String.format(
            Locale.ROOT,
            "NVRTC kernels compiled (or read from %s) and loaded in %.0f ms.%n",
            KernelCache.standard().dir(),
            kernelsReadyMs));
    System.out.print(o);
  }

  private static String launchBound(List<Row> layer, List<Row> once) {
    List<String> names = new ArrayList<>();
    for (List<Row> rows : List.of(layer, once)) {
      for (Row r : rows) {
        if (r.ref.hostUs / 1e3 > r.ref.gpuMs) names.add(r.part + " (libtorch)");
        if (r.fused != null && r.fused.hostUs / 1e3 > r.fused.gpuMs) names.add(r.part + " (NVRTC)");
      }
    }
    return names.isEmpty() ? "none" : String.join(", ", names);
  }
}
