package dev.hanlin.bench;

import dev.hanlin.model.RmsNorm;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Locale;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.global.torch;

/**
 * Host cost of one tensor op issued from Java (issue 16: the step is nearly host-bound on an H200).
 * Every case works on 1-element CPU tensors, so libtorch's own kernel time is negligible and what
 * is left is dispatch plus the Java/JavaCPP bookkeeping that is the same on a GPU. Prints µs per
 * call, the best of {@code rounds} rounds of {@code n} calls each, as wall time and as the calling
 * thread's CPU time (on a shared, loaded machine the latter is the steadier figure; it leaves out
 * work JavaCPP's deallocator thread and the GC do elsewhere, which the wall time includes).
 *
 * <p>Usage: {@code HostCost [n=200000] [rounds=3] [device=cpu|cuda]}; run it with and without
 * {@code -Dorg.bytedeco.javacpp.nopointergc=true} and {@code
 * -Dorg.bytedeco.javacpp.maxPhysicalBytes=...} (bench/host-cost.sh). On {@code cuda} the tensors
 * live on card 0 and each round ends with a synchronize.
 */
public final class HostCost {
  private HostCost() {}

  /** One benchmark body: runs call number {@code i}. */
  private interface Body {
    void run(int i);
  }

  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
  private static Device dev;
  private static int n;
  private static int rounds;

  public static void main(String[] args) {
    n = args.length > 0 ? Integer.parseInt(args[0]) : 200_000;
    rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    dev = args.length > 2 ? Device.parse(args[2]) : Device.CPU;
    Torch.setNumThreads(1);
    System.out.printf(
        Locale.ROOT,
        "# HostCost n=%d rounds=%d device=%s nopointergc=%s maxBytes=%s maxPhysicalBytes=%s (JavaCPP: %d / %d)"
            + " java=%s cores=%d%n",
        n,
        rounds,
        dev,
        System.getProperty("org.bytedeco.javacpp.nopointergc"),
        System.getProperty("org.bytedeco.javacpp.maxBytes"),
        System.getProperty("org.bytedeco.javacpp.maxPhysicalBytes"),
        Pointer.maxBytes(),
        Pointer.maxPhysicalBytes(),
        System.getProperty("java.version"),
        Runtime.getRuntime().availableProcessors());

    Tensor a = Torch.full(1.0, DType.F32, dev, 1).retain();
    Tensor b = Torch.full(2.0, DType.F32, dev, 1).retain();
    Tensor h = Torch.full(1.0, DType.BF16, dev, 1, 8).retain();
    Tensor w = Torch.full(1.0, DType.BF16, dev, 8).retain();
    Tensor big = Torch.zeros(DType.F32, dev, 2, 3, 4, 5).retain();
    org.bytedeco.pytorch.Tensor ra = a.raw(), rb = b.raw();
    RmsNorm norm = new RmsNorm(w, 1e-5);

    // JavaCPP directly, as the floor.
    time("raw torch.add(a,b), close()", 1, i -> torch.add(ra, rb).close());
    time("raw torch.add(a,b), PointerScope per call", 1, i -> rawScoped(ra, rb));
    time("raw torch.add(a,b), PointerScope per 100", 100, i -> torch.add(ra, rb));
    time("raw a.numel() (JNI only)", 100, i -> ra.numel());

    // Through the facade.
    time("Tensor.add(Tensor), Scope per call", 1, i -> facadeScoped(a, b));
    time("Tensor.add(Tensor), Scope per 100", 100, i -> a.add(b));
    time("empty Scope open/close", 1, i -> emptyScope());
    time("Tensor.mul(double) (Scalar)", 100, i -> a.mul(2.0));
    time("Tensor.add(double) (Scalar)", 100, i -> a.add(1.0));
    time("Tensor.toFloat() of bf16", 100, i -> h.toFloat());
    time("Tensor.to(F32) of f32 (no copy)", 100, i -> a.to(DType.F32));
    time("Tensor.to(BF16) of f32", 100, i -> a.to(DType.BF16));
    time("Tensor.dtype()", 100, i -> a.dtype());
    time("Tensor.device()", 100, i -> a.device());
    time("Tensor.size(-1)", 100, i -> big.size(-1));
    time("Tensor.shape() of 4-d", 100, i -> big.shape());
    time("Tensor.view(4-d)", 100, i -> big.view(6, 20));
    time("Torch.empty(F32, dev, 8)", 100, i -> Torch.empty(DType.F32, dev, 8));
    time("Torch.zeros(F32, dev, 8)", 100, i -> Torch.zeros(DType.F32, dev, 8));
    time("Torch.full(0.5, F32, dev, 8)", 100, i -> Torch.full(0.5, DType.F32, dev, 8));
    time("Tensor.mean(-1, keepDim)", 100, i -> h.mean(-1, true));
    time("Torch.rmsNorm(x, eps) of f32", 100, i -> Torch.rmsNorm(a, 1e-5));
    time("RmsNorm.forward (bf16 [1,8]: 4 ops)", 100, i -> norm.forward(h));
    System.out.println("# done");
  }

  private static void rawScoped(org.bytedeco.pytorch.Tensor x, org.bytedeco.pytorch.Tensor y) {
    try (PointerScope s = new PointerScope()) {
      torch.add(x, y);
    }
  }

  private static void facadeScoped(Tensor x, Tensor y) {
    try (Scope s = Scope.open()) {
      x.add(y);
    }
  }

  private static void emptyScope() {
    try (Scope s = Scope.open()) {
      // nothing: the scope's own cost
    }
  }

  /**
   * Times {@code n} calls of {@code body}, inside a {@link Scope} per {@code perScope} calls
   * ({@code perScope == 1}: the body manages its own memory and runs without one), and prints the
   * best round in µs per call.
   */
  private static void time(String name, int perScope, Body body) {
    double best = Double.MAX_VALUE;
    double bestCpu = Double.MAX_VALUE;
    for (int r = 0; r < rounds + 1; r++) { // round 0 warms up the JIT
      long c0 = THREADS.getCurrentThreadCpuTime();
      long t0 = System.nanoTime();
      if (perScope == 1) {
        for (int i = 0; i < n; i++) body.run(i);
      } else {
        for (int i = 0; i < n; i += perScope) {
          try (Scope s = Scope.open()) {
            for (int j = 0; j < perScope; j++) body.run(i + j);
          }
        }
      }
      Torch.synchronize(); // on CUDA: the kernels' time too, when they are slower than the host
      double us = (System.nanoTime() - t0) / 1e3 / n;
      double cpu = (THREADS.getCurrentThreadCpuTime() - c0) / 1e3 / n;
      if (r > 0) {
        best = Math.min(best, us);
        bestCpu = Math.min(bestCpu, cpu);
      }
    }
    System.out.printf(
        Locale.ROOT, "%-44s %8.3f us/call wall %8.3f us/call thread-cpu%n", name, best, bestCpu);
  }
}
