package dev.hanlin.bench;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.fused.NvrtcOps;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The host cost of {@link NvrtcOps}' calls without a GPU: every check, output allocation and
 * argument marshalling up to the kernel launch ({@link NvrtcOps#hostSideOnly}), on CPU tensors of
 * TinyLlama's row widths (C 2048, 5632, V 32000, 32 heads of 64) but few rows, so that the CPU
 * allocator's cost stays near the CUDA caching allocator's. Left out: libtorch's current-stream
 * query and cuLaunchKernel itself (~5 µs on an H200). Each call runs in its own {@link Scope}, as
 * StepProfile's do; times are this thread's CPU time; "first 12" is the mean of an op's first 12
 * calls in this JVM (StepProfile timed 2 warm-up + 10 calls), "warm" the mean after {@code warmup}
 * calls.
 *
 * <p>{@code java -cp ... dev.hanlin.bench.NvrtcHostCost [warmup=20000] [calls=20000] [rows=16]}
 */
public final class NvrtcHostCost {
  private NvrtcHostCost() {}

  public static void main(String[] argv) {
    Map<String, String> a = new LinkedHashMap<>();
    for (String s : argv) a.put(s.substring(0, s.indexOf('=')), s.substring(s.indexOf('=') + 1));
    int warmup = Integer.parseInt(a.getOrDefault("warmup", "20000"));
    int calls = Integer.parseInt(a.getOrDefault("calls", "20000"));
    long rows = Long.parseLong(a.getOrDefault("rows", "16"));
    Device cpu = Device.CPU;
    DType bf = DType.BF16;
    long c = 2048, inter = 5632, v = 32000, h = 32, d = 64;
    Generator g = Generator.cpu(1);
    Tensor x = Torch.randn(g, bf, cpu, rows, c).retain();
    Tensor delta = Torch.randn(g, bf, cpu, rows, c).retain();
    Tensor w = Torch.randn(g, bf, cpu, c).retain();
    Tensor rstd = Torch.randn(g, DType.F32, cpu, rows).retain();
    Tensor gate = Torch.randn(g, bf, cpu, rows, inter).retain();
    Tensor up = Torch.randn(g, bf, cpu, rows, inter).retain();
    // q as the transposed projection (B, T, H, D) -> (B, H, T, D), as the model makes it
    Tensor q = Torch.randn(g, bf, cpu, 1, rows, h, d).transpose(1, 2).retain();
    Tensor cos = Torch.randn(g, bf, cpu, rows, d).retain();
    Tensor sin = Torch.randn(g, bf, cpu, rows, d).retain();
    Tensor logits = Torch.randn(g, bf, cpu, rows, v).retain();
    Tensor labels = Torch.zeros(DType.I64, cpu, rows).retain();
    NvrtcOps ops = NvrtcOps.hostSideOnly(cpu);

    Map<String, Runnable> parts = new LinkedHashMap<>();
    parts.put("RMSNorm fwd", () -> ops.rmsNorm(x, w, 1e-5));
    parts.put("residual add + RMSNorm fwd", () -> ops.addRmsNorm(x, delta, w, 1e-5));
    parts.put("RMSNorm bwd (2 launches)", () -> ops.rmsNormBackward(delta, x, w, rstd));
    parts.put("RoPE fwd (one of q, k)", () -> ops.rope(q, cos, sin));
    parts.put("SwiGLU fwd", () -> ops.swiglu(gate, up));
    parts.put("SwiGLU bwd", () -> ops.swigluBackward(gate, gate, up));
    parts.put("cross-entropy (+ libtorch sum)", () -> ops.crossEntropy(logits, labels, 1.0));

    System.out.printf(
        Locale.ROOT,
        "NvrtcOps host cost per call, CPU tensors (rows %d), no launch, thread CPU time; nopointergc=%s%n%n"
            + "| op | first 12 µs/call | warm µs/call |%n|---|---|---|%n",
        rows,
        System.getProperty("org.bytedeco.javacpp.nopointergc", "false"));
    for (var e : parts.entrySet()) {
      double first = perCall(e.getValue(), 12);
      perCall(e.getValue(), warmup);
      double warm = perCall(e.getValue(), calls);
      System.out.printf(Locale.ROOT, "| %s | %.1f | %.2f |%n", e.getKey(), first, warm);
    }
  }

  /**
   * This thread's CPU µs per call: this machine's cores are shared, so wall time would measure the
   * neighbours too.
   */
  private static double perCall(Runnable body, int n) {
    long t0 = CPU.getCurrentThreadCpuTime();
    for (int i = 0; i < n; i++) {
      try (Scope s = Scope.open()) {
        body.run();
      }
    }
    return (CPU.getCurrentThreadCpuTime() - t0) / 1e3 / Math.max(1, n);
  }

  private static final ThreadMXBean CPU = ManagementFactory.getThreadMXBean();
}
