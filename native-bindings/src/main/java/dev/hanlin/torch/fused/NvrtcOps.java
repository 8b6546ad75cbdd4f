package dev.hanlin.torch.fused;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.cuda.CudaDriver;
import dev.hanlin.torch.cuda.KernelCache;
import dev.hanlin.torch.cuda.Nvrtc;
import java.util.HashMap;
import java.util.Map;
import org.bytedeco.pytorch.global.torch_cuda;

/**
 * {@link BlockOps} as fused CUDA kernels ({@code block_ops.cu}), compiled with NVRTC for the card's
 * architecture on first use (cached on disk, see {@link KernelCache}) and launched on libtorch's
 * current stream of the device, so they order with libtorch's kernels and never synchronize.
 *
 * <p>What the kernels require, checked before each launch: CUDA tensors on this object's device;
 * float32 or bfloat16, one dtype per call (weights too; cos/sin of another dtype are converted);
 * contiguous, except RoPE's input, which may be any strided (B, H, T, D) view such as a transposed
 * projection; RMSNorm rows of at most {@link BlockKernels#MAX_NORM_COLUMNS}; labels int64. Outputs
 * are new contiguous tensors; RoPE's is (B, H, T, D) contiguous. A label outside [0, V) other than
 * -100 makes that row's loss NaN (a kernel cannot throw).
 */
public final class NvrtcOps implements BlockOps {
  private static final long GRID_STRIDE_BLOCKS = 8192;

  private final Device device;
  private final CudaDriver cuda;
  private final Map<String, CudaDriver.Function> kernels = new HashMap<>();
  private final boolean launches;

  private NvrtcOps(Device device, boolean launches) {
    this.device = device;
    this.launches = launches;
    if (!launches) {
      this.cuda = null;
      return;
    }
    this.cuda = CudaDriver.get();
    int current = currentDevice(device);
    String arch = cuda.arch(current);
    byte[] cubin =
        KernelCache.standard()
            .cubin(
                Nvrtc.get(), BlockKernels.source(), BlockKernels.FILE, arch, BlockKernels.OPTIONS);
    CudaDriver.Module module = cuda.load(cubin);
    for (String name : BlockKernels.names()) kernels.put(name, cuda.function(module, name));
  }

  /**
   * Compiles (or reads from the cache) and loads the kernels for {@code device}, whose context must
   * be current on this thread, as it is once libtorch has run a CUDA op here.
   */
  public static NvrtcOps forDevice(Device device) {
    if (!device.isCuda()) throw new IllegalArgumentException("NvrtcOps needs a CUDA device");
    return new NvrtcOps(device, true);
  }

  /**
   * For measuring the host side only: every check, output allocation and argument marshalling of
   * an op, but no kernel and no CUDA at all (tensors may live on the CPU; outputs are left
   * uninitialized). Never for results.
   */
  public static NvrtcOps hostSideOnly(Device device) {
    return new NvrtcOps(device, false);
  }

  private int currentDevice(Device d) {
    int current;
    try {
      current = cuda.currentDevice();
    } catch (IllegalStateException noContext) {
      // the runtime makes the primary context current on this thread with its first call here
      torch_cuda.set_device((byte) d.index());
      Torch.zeros(DType.F32, d, 1).close();
      current = cuda.currentDevice();
    }
    if (current != d.index()) {
      throw new IllegalStateException(
          "the current CUDA context is device " + current + ", not " + d + " (set_device first)");
    }
    return current;
  }

  public Device device() {
    return device;
  }

  // ---- RMSNorm ----

  @Override
  public Normed rmsNorm(Tensor x, Tensor weight, double eps) {
    String t = type(x, "x");
    long c = x.size(x.dim() - 1);
    long n = x.numel() / c;
    check(weight, "weight", x.dtype(), c);
    Tensor y = Torch.empty(x.dtype(), device, x.shape());
    Tensor rstd = Torch.empty(DType.F32, device, rowShape(x));
    launch(
        "rmsnorm_fwd_" + t,
        n,
        BlockKernels.normThreads(c),
        ptr(x),
        ptr(weight),
        ptr(y),
        ptr(rstd),
        (int) c,
        (float) eps);
    return new Normed(y, rstd);
  }

  @Override
  public AddNormed addRmsNorm(Tensor x, Tensor delta, Tensor weight, double eps) {
    String t = type(x, "x");
    long c = x.size(x.dim() - 1);
    long n = x.numel() / c;
    checkLike(delta, "delta", x);
    check(weight, "weight", x.dtype(), c);
    Tensor h = Torch.empty(x.dtype(), device, x.shape());
    Tensor y = Torch.empty(x.dtype(), device, x.shape());
    Tensor rstd = Torch.empty(DType.F32, device, rowShape(x));
    launch(
        "add_rmsnorm_fwd_" + t,
        n,
        BlockKernels.normThreads(c),
        ptr(x),
        ptr(delta),
        ptr(weight),
        ptr(h),
        ptr(y),
        ptr(rstd),
        (int) c,
        (float) eps);
    return new AddNormed(h, y, rstd);
  }

  @Override
  public NormGrads rmsNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor rstd) {
    String t = type(x, "x");
    long c = x.size(x.dim() - 1);
    long n = x.numel() / c;
    checkLike(dy, "dy", x);
    check(weight, "weight", x.dtype(), c);
    check(rstd, "rstd", DType.F32, n);
    var l = BlockKernels.NormBackwardLaunch.of(n);
    Tensor dx = Torch.empty(x.dtype(), device, x.shape());
    Tensor partial = Torch.empty(DType.F32, device, l.blocks(), c);
    Tensor dw = Torch.empty(DType.F32, device, c);
    launch(
        "rmsnorm_bwd_" + t,
        l.blocks(),
        BlockKernels.normThreads(c),
        ptr(dy),
        ptr(x),
        ptr(weight),
        ptr(rstd),
        ptr(dx),
        ptr(partial),
        n,
        (int) c,
        l.rowsPerBlock());
    launch("rmsnorm_dw", (c + 31) / 32, 1024, ptr(partial), ptr(dw), l.blocks(), (int) c);
    return new NormGrads(dx, dw);
  }

  // ---- RoPE ----

  @Override
  public Tensor rope(Tensor x, Tensor cos, Tensor sin) {
    return ropeKernel("rope_fwd_", x, cos, sin);
  }

  @Override
  public Tensor ropeBackward(Tensor dy, Tensor cos, Tensor sin) {
    return ropeKernel("rope_bwd_", dy, cos, sin);
  }

  private Tensor ropeKernel(String kernel, Tensor x, Tensor cos, Tensor sin) {
    if (x.dim() != 4) throw new IllegalArgumentException("RoPE input must be (B, H, T, D): " + x);
    String t = typeAnyLayout(x, "x");
    long b = x.size(0), h = x.size(1), tt = x.size(2), d = x.size(3);
    if (d % 2 != 0) throw new IllegalArgumentException("RoPE head dim must be even: " + x);
    Tensor c = table(cos, "cos", x), s = table(sin, "sin", x);
    long cosB = cos.dim() == 4 && cos.size(0) == b && b > 1 ? tt * d : 0;
    Tensor out = Torch.empty(x.dtype(), device, b, h, tt, d);
    if (b * h > 65535 || tt * d > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("RoPE takes B*H <= 65535 and T*D < 2^31: " + x);
    }
    var r = x.raw();
    launch2d(
        kernel + t,
        BlockKernels.elementwiseBlocks(tt * d / 2, Integer.MAX_VALUE),
        b * h,
        BlockKernels.ELEMENTWISE_THREADS,
        ptr(x),
        ptr(c),
        ptr(s),
        ptr(out),
        (int) h,
        (int) tt,
        (int) d,
        r.stride(0),
        r.stride(1),
        r.stride(2),
        r.stride(3),
        cosB);
    return out;
  }

  /** cos or sin as (T, D) or (B, 1, T, D), contiguous, in x's dtype. */
  private Tensor table(Tensor cs, String what, Tensor x) {
    long tt = x.size(2), d = x.size(3);
    boolean plain = cs.dim() == 2 && cs.size(0) == tt && cs.size(1) == d;
    boolean batched =
        cs.dim() == 4
            && (cs.size(0) == x.size(0) || cs.size(0) == 1)
            && cs.size(1) == 1
            && cs.size(2) == tt
            && cs.size(3) == d;
    if (!plain && !batched) {
      throw new IllegalArgumentException(
          what + " " + cs + " fits neither (T, D) nor (B, 1, T, D) for " + x);
    }
    onDevice(cs, what);
    if (cs.dtype() != x.dtype()) cs = cs.to(x.dtype());
    return cs.isContiguous() ? cs : cs.contiguous();
  }

  // ---- SwiGLU ----

  @Override
  public Tensor swiglu(Tensor gate, Tensor up) {
    String t = type(gate, "gate");
    checkLike(up, "up", gate);
    Tensor y = Torch.empty(gate.dtype(), device, gate.shape());
    long n = gate.numel();
    launch(
        "swiglu_fwd_" + t,
        BlockKernels.elementwiseBlocks(n, GRID_STRIDE_BLOCKS),
        BlockKernels.ELEMENTWISE_THREADS,
        ptr(gate),
        ptr(up),
        ptr(y),
        n);
    return y;
  }

  @Override
  public SwigluGrads swigluBackward(Tensor dy, Tensor gate, Tensor up) {
    String t = type(gate, "gate");
    checkLike(up, "up", gate);
    checkLike(dy, "dy", gate);
    Tensor dg = Torch.empty(gate.dtype(), device, gate.shape());
    Tensor du = Torch.empty(gate.dtype(), device, gate.shape());
    long n = gate.numel();
    launch(
        "swiglu_bwd_" + t,
        BlockKernels.elementwiseBlocks(n, GRID_STRIDE_BLOCKS),
        BlockKernels.ELEMENTWISE_THREADS,
        ptr(dy),
        ptr(gate),
        ptr(up),
        ptr(dg),
        ptr(du),
        n);
    return new SwigluGrads(dg, du);
  }

  // ---- cross-entropy ----

  @Override
  public LossAndGrad crossEntropy(Tensor logits, Tensor labels, double scale) {
    String t = type(logits, "logits");
    if (logits.dim() != 2) throw new IllegalArgumentException("logits must be (N, V): " + logits);
    long n = logits.size(0), v = logits.size(1);
    check(labels, "labels", DType.I64, n);
    Tensor rowLoss = Torch.empty(DType.F32, device, n);
    Tensor dlogits = Torch.empty(logits.dtype(), device, n, v);
    launch(
        "cross_entropy_" + t,
        n,
        BlockKernels.crossEntropyThreads(v),
        ptr(logits),
        ptr(labels),
        ptr(rowLoss),
        ptr(dlogits),
        (int) v,
        (float) scale);
    return new LossAndGrad(rowLoss.sum(), dlogits);
  }

  // ---- checks and launch ----

  private void launch(String kernel, long grid, int block, Object... args) {
    launch2d(kernel, grid, 1, block, args);
  }

  private void launch2d(String kernel, long grid, long gridY, int block, Object... args) {
    if (grid == 0 || gridY == 0) return; // nothing to do, and CUDA refuses an empty grid
    if (!launches) {
      CudaDriver.marshalOnly(kernel, args);
      return;
    }
    long handle;
    // closed here rather than left to a scope: a launch outside any scope must not leak them
    try (var current = torch_cuda.getCurrentCUDAStream((byte) device.index())) {
      var stream = current.stream(); // a view of the handle, owned by libtorch
      // the default stream is CUDA's legacy stream, handle 0, which JavaCPP returns as null
      handle = stream == null ? 0 : stream.address();
    }
    cuda.launch(kernels.get(kernel), grid, gridY, block, handle, args);
  }

  private static long ptr(Tensor t) {
    return t.raw().data_ptr().address();
  }

  private static long[] rowShape(Tensor x) {
    long[] s = x.shape();
    return java.util.Arrays.copyOf(s, s.length - 1);
  }

  private void onDevice(Tensor t, String what) {
    if (!t.device().equals(device)) {
      throw new IllegalArgumentException(what + " is on " + t.device() + ", kernels on " + device);
    }
  }

  /** The kernel suffix of x's dtype; x must be contiguous on this device. */
  private String type(Tensor x, String what) {
    if (!x.isContiguous()) throw new IllegalArgumentException(what + " must be contiguous: " + x);
    return typeAnyLayout(x, what);
  }

  private String typeAnyLayout(Tensor x, String what) {
    onDevice(x, what);
    if (x.dim() == 0) throw new IllegalArgumentException(what + " must have a dimension: " + x);
    return switch (x.dtype()) {
      case F32 -> "f32";
      case BF16 -> "bf16";
      default -> throw new IllegalArgumentException(what + ": float32 or bfloat16, not " + x);
    };
  }

  private void checkLike(Tensor t, String what, Tensor like) {
    onDevice(t, what);
    if (t.dtype() != like.dtype() || !java.util.Arrays.equals(t.shape(), like.shape())) {
      throw new IllegalArgumentException(what + " " + t + " must match " + like);
    }
    if (!t.isContiguous()) throw new IllegalArgumentException(what + " must be contiguous: " + t);
  }

  private void check(Tensor t, String what, DType dtype, long numel) {
    onDevice(t, what);
    if (t.dtype() != dtype || t.numel() != numel || !t.isContiguous()) {
      throw new IllegalArgumentException(
          what + " " + t + " must be " + numel + " contiguous " + dtype + " elements");
    }
  }
}
