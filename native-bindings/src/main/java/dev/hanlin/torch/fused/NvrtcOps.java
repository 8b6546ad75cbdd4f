package dev.hanlin.torch.fused;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.cuda.CudaDriver;
import dev.hanlin.torch.cuda.KernelCache;
import dev.hanlin.torch.cuda.LaunchArgs;
import dev.hanlin.torch.cuda.Nvrtc;
import java.util.Arrays;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.DeviceType;
import org.bytedeco.pytorch.global.torch.ScalarType;
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
 *
 * <p>Host cost per call is what limits these kernels (they run in tens of µs), so the per-call path
 * makes no native object but the outputs and the stream query: kernel functions are resolved once,
 * tensor options are made once, checks read libtorch's fields directly (no {@code Device} object
 * per check), and the launch arguments go into a per-thread reusable block ({@link LaunchArgs}).
 */
public final class NvrtcOps implements BlockOps {
  private static final long GRID_STRIDE_BLOCKS = 8192;
  private static final int F32 = 0, BF16 = 1; // kernel variant: index into TYPES

  /** The kernels with one variant per element type ({@code <prefix><f32|bf16>}). */
  private enum Kernel {
    RMSNORM_FWD("rmsnorm_fwd_"),
    ADD_RMSNORM_FWD("add_rmsnorm_fwd_"),
    RMSNORM_BWD("rmsnorm_bwd_"),
    ROPE_FWD("rope_fwd_"),
    ROPE_BWD("rope_bwd_"),
    SWIGLU_FWD("swiglu_fwd_"),
    SWIGLU_BWD("swiglu_bwd_"),
    CROSS_ENTROPY("cross_entropy_");

    final String prefix;

    Kernel(String prefix) {
      this.prefix = prefix;
    }
  }

  private final Device device;
  private final boolean onCuda;
  private final boolean oneCudaDevice; // then is_cuda() alone proves the device
  private final CudaDriver cuda; // null: host side only, nothing is launched
  private final CudaDriver.Function[][] functions; // [kernel][type]
  private final CudaDriver.Function rmsnormDw;
  private final TensorOptions[] options; // [F32, BF16] on this device, made once, never freed
  private final MemoryFormatOptional noFormat;

  private NvrtcOps(Device device, boolean launches) {
    this.device = device;
    this.onCuda = device.isCuda();
    this.oneCudaDevice = !onCuda || Torch.cudaDeviceCount() == 1;
    this.options = new TensorOptions[] {options(ScalarType.Float), options(ScalarType.BFloat16)};
    this.noFormat = new MemoryFormatOptional().retainReference();
    this.functions = new CudaDriver.Function[Kernel.values().length][BlockKernels.TYPES.size()];
    if (!launches) {
      this.cuda = null;
      this.rmsnormDw = null;
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
    for (Kernel k : Kernel.values()) {
      for (int t = 0; t < BlockKernels.TYPES.size(); t++) {
        functions[k.ordinal()][t] = cuda.function(module, k.prefix + BlockKernels.TYPES.get(t));
      }
    }
    this.rmsnormDw = cuda.function(module, "rmsnorm_dw");
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
   * For measuring the host side only: every check, output allocation and argument marshalling of an
   * op, but no kernel and no CUDA at all (tensors may live on the CPU; outputs are left
   * uninitialized). Never for results.
   */
  public static NvrtcOps hostSideOnly(Device device) {
    return new NvrtcOps(device, false);
  }

  /** Tensor options of this device, retained: they outlive any scope open at construction. */
  private TensorOptions options(ScalarType type) {
    var d =
        onCuda
            ? new org.bytedeco.pytorch.Device(DeviceType.CUDA, (byte) device.index())
            : new org.bytedeco.pytorch.Device(DeviceType.CPU);
    return new TensorOptions(type).device(new DeviceOptional(d)).retainReference();
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
    var r = x.raw();
    int t = type(x, "x");
    long[] shape = shape(r);
    long c = shape[shape.length - 1];
    long n = r.numel() / c;
    check(weight, "weight", t, c);
    Tensor y = empty(t, shape);
    Tensor rstd = empty(F32, rows(shape));
    int threads = BlockKernels.normThreads(c);
    var a = LaunchArgs.ofThisThread();
    a.i64(ptr(x)).i64(ptr(weight)).i64(ptr(y)).i64(ptr(rstd)).i32((int) c).f32((float) eps);
    launch(Kernel.RMSNORM_FWD, t, n, 1, threads, a);
    return new Normed(y, rstd);
  }

  @Override
  public AddNormed addRmsNorm(Tensor x, Tensor delta, Tensor weight, double eps) {
    var r = x.raw();
    int t = type(x, "x");
    long[] shape = shape(r);
    long c = shape[shape.length - 1];
    long n = r.numel() / c;
    checkLike(delta, "delta", x, t, shape);
    check(weight, "weight", t, c);
    Tensor h = empty(t, shape);
    Tensor y = empty(t, shape);
    Tensor rstd = empty(F32, rows(shape));
    int threads = BlockKernels.normThreads(c);
    var a = LaunchArgs.ofThisThread();
    a.i64(ptr(x)).i64(ptr(delta)).i64(ptr(weight)).i64(ptr(h)).i64(ptr(y)).i64(ptr(rstd));
    a.i32((int) c).f32((float) eps);
    launch(Kernel.ADD_RMSNORM_FWD, t, n, 1, threads, a);
    return new AddNormed(h, y, rstd);
  }

  @Override
  public NormGrads rmsNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor rstd) {
    var r = x.raw();
    int t = type(x, "x");
    long[] shape = shape(r);
    long c = shape[shape.length - 1];
    long n = r.numel() / c;
    checkLike(dy, "dy", x, t, shape);
    check(weight, "weight", t, c);
    check(rstd, "rstd", F32, n);
    int threads = BlockKernels.normThreads(c);
    var l = BlockKernels.NormBackwardLaunch.of(n);
    Tensor dx = empty(t, shape);
    Tensor partial = empty(F32, l.blocks(), c);
    Tensor dw = empty(F32, c);
    var a = LaunchArgs.ofThisThread();
    a.i64(ptr(dy)).i64(ptr(x)).i64(ptr(weight)).i64(ptr(rstd)).i64(ptr(dx)).i64(ptr(partial));
    a.i64(n).i32((int) c).i32(l.rowsPerBlock());
    launch(Kernel.RMSNORM_BWD, t, l.blocks(), 1, threads, a);
    a.clear().i64(ptr(partial)).i64(ptr(dw)).i32(l.blocks()).i32((int) c);
    launch(rmsnormDw, (c + 31) / 32, 1, 1024, a);
    return new NormGrads(dx, dw);
  }

  // ---- RoPE ----

  @Override
  public Tensor rope(Tensor x, Tensor cos, Tensor sin) {
    return ropeKernel(Kernel.ROPE_FWD, x, cos, sin);
  }

  @Override
  public Tensor ropeBackward(Tensor dy, Tensor cos, Tensor sin) {
    return ropeKernel(Kernel.ROPE_BWD, dy, cos, sin);
  }

  private Tensor ropeKernel(Kernel kernel, Tensor x, Tensor cos, Tensor sin) {
    var r = x.raw();
    if (r.dim() != 4) throw new IllegalArgumentException("RoPE input must be (B, H, T, D): " + x);
    int t = typeAnyLayout(x, "x");
    long[] shape = shape(r);
    long b = shape[0], h = shape[1], tt = shape[2], d = shape[3];
    if (d % 2 != 0) throw new IllegalArgumentException("RoPE head dim must be even: " + x);
    if (b * h > 65535 || tt * d > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("RoPE takes B*H <= 65535 and T*D < 2^31: " + x);
    }
    Tensor c = table(cos, "cos", x, t, shape), s = table(sin, "sin", x, t, shape);
    var cr = cos.raw();
    long cosB = cr.dim() == 4 && cr.size(0) == b && b > 1 ? tt * d : 0;
    Tensor out = empty(t, shape);
    var a = LaunchArgs.ofThisThread();
    a.i64(ptr(x)).i64(ptr(c)).i64(ptr(s)).i64(ptr(out)).i32((int) h).i32((int) tt).i32((int) d);
    a.i64(r.stride(0)).i64(r.stride(1)).i64(r.stride(2)).i64(r.stride(3)).i64(cosB);
    int blocks = BlockKernels.elementwiseBlocks(tt * d / 2, Integer.MAX_VALUE);
    launch(kernel, t, blocks, b * h, BlockKernels.ELEMENTWISE_THREADS, a);
    return out;
  }

  /** cos or sin as (T, D) or (B, 1, T, D), contiguous, in x's dtype. */
  private Tensor table(Tensor cs, String what, Tensor x, int t, long[] xShape) {
    var r = cs.raw();
    long tt = xShape[2], d = xShape[3];
    long dims = r.dim();
    boolean plain = dims == 2 && r.size(0) == tt && r.size(1) == d;
    boolean batched =
        dims == 4
            && (r.size(0) == xShape[0] || r.size(0) == 1)
            && r.size(1) == 1
            && r.size(2) == tt
            && r.size(3) == d;
    if (!plain && !batched) {
      throw new IllegalArgumentException(
          what + " " + cs + " fits neither (T, D) nor (B, 1, T, D) for " + x);
    }
    onDevice(cs, what);
    if (typeOf(r.scalar_type()) != t) cs = cs.to(x.dtype());
    return cs.raw().is_contiguous() ? cs : cs.contiguous();
  }

  // ---- SwiGLU ----

  @Override
  public Tensor swiglu(Tensor gate, Tensor up) {
    int t = type(gate, "gate");
    long[] shape = shape(gate.raw());
    checkLike(up, "up", gate, t, shape);
    Tensor y = empty(t, shape);
    long n = gate.raw().numel();
    var a = LaunchArgs.ofThisThread().i64(ptr(gate)).i64(ptr(up)).i64(ptr(y)).i64(n);
    launch(Kernel.SWIGLU_FWD, t, swigluBlocks(n, t), 1, BlockKernels.ELEMENTWISE_THREADS, a);
    return y;
  }

  @Override
  public SwigluGrads swigluBackward(Tensor dy, Tensor gate, Tensor up) {
    int t = type(gate, "gate");
    long[] shape = shape(gate.raw());
    checkLike(up, "up", gate, t, shape);
    checkLike(dy, "dy", gate, t, shape);
    Tensor dg = empty(t, shape);
    Tensor du = empty(t, shape);
    long n = gate.raw().numel();
    var a = LaunchArgs.ofThisThread();
    a.i64(ptr(dy)).i64(ptr(gate)).i64(ptr(up)).i64(ptr(dg)).i64(ptr(du)).i64(n);
    launch(Kernel.SWIGLU_BWD, t, swigluBlocks(n, t), 1, BlockKernels.ELEMENTWISE_THREADS, a);
    return new SwigluGrads(dg, du);
  }

  /** Blocks of the SwiGLU kernels: a thread per 16-byte vector (4 float, 8 bf16), capped. */
  private static long swigluBlocks(long n, int t) {
    long lanes = t == F32 ? 4 : 8;
    return BlockKernels.elementwiseBlocks((n + lanes - 1) / lanes, GRID_STRIDE_BLOCKS);
  }

  // ---- cross-entropy ----

  @Override
  public LossAndGrad crossEntropy(Tensor logits, Tensor labels, double scale) {
    var r = logits.raw();
    int t = type(logits, "logits");
    if (r.dim() != 2) throw new IllegalArgumentException("logits must be (N, V): " + logits);
    long n = r.size(0), v = r.size(1);
    checkLabels(labels, n);
    Tensor rowLoss = empty(F32, n);
    Tensor dlogits = empty(t, n, v);
    var a = LaunchArgs.ofThisThread();
    a.i64(ptr(logits)).i64(ptr(labels)).i64(ptr(rowLoss)).i64(ptr(dlogits));
    a.i32((int) v).f32((float) scale);
    launch(Kernel.CROSS_ENTROPY, t, n, 1, BlockKernels.crossEntropyThreads(v), a);
    return new LossAndGrad(rowLoss.sum(), dlogits);
  }

  // ---- outputs, checks and launch ----

  private Tensor empty(int type, long... shape) {
    return Tensor.wrap(torch.empty(shape, options[type], noFormat));
  }

  private void launch(Kernel k, int type, long grid, long gridY, int block, LaunchArgs args) {
    launch(cuda == null ? null : functions[k.ordinal()][type], grid, gridY, block, args);
  }

  private void launch(CudaDriver.Function f, long grid, long gridY, int block, LaunchArgs args) {
    if (grid == 0 || gridY == 0) return; // nothing to do, and CUDA refuses an empty grid
    if (cuda == null) return; // host side only
    cuda.launch(f, grid, gridY, block, currentStream(), args);
  }

  /** libtorch's current stream of the device: asked on every launch, since callers may switch. */
  private long currentStream() {
    // closed here rather than left to a scope: a launch outside any scope must not leak it
    try (var current = torch_cuda.getCurrentCUDAStream((byte) device.index())) {
      var stream = current.stream(); // a view of the handle, owned by libtorch
      // the default stream is CUDA's legacy stream, handle 0, which JavaCPP returns as null
      return stream == null ? 0 : stream.address();
    }
  }

  private static long ptr(Tensor t) {
    return t.raw().data_ptr().address();
  }

  private static long[] shape(org.bytedeco.pytorch.Tensor r) {
    int n = (int) r.dim();
    long[] s = new long[n];
    for (int i = 0; i < n; i++) s[i] = r.size(i);
    return s;
  }

  private static long[] rows(long[] shape) {
    return Arrays.copyOf(shape, shape.length - 1);
  }

  /**
   * Whether t is on this object's device, from libtorch's flags: a {@code Device} object per check
   * would be a native allocation; the index is read only with several CUDA devices.
   */
  private void onDevice(Tensor t, String what) {
    var r = t.raw();
    boolean here =
        onCuda ? r.is_cuda() && (oneCudaDevice || t.device().equals(device)) : r.is_cpu();
    if (!here) {
      throw new IllegalArgumentException(what + " is on " + t.device() + ", kernels on " + device);
    }
  }

  /** The kernel variant of x's dtype; x must be contiguous on this device. */
  private int type(Tensor x, String what) {
    if (!x.raw().is_contiguous()) {
      throw new IllegalArgumentException(what + " must be contiguous: " + x);
    }
    return typeAnyLayout(x, what);
  }

  private int typeAnyLayout(Tensor x, String what) {
    onDevice(x, what);
    var r = x.raw();
    if (r.dim() == 0) throw new IllegalArgumentException(what + " must have a dimension: " + x);
    int t = typeOf(r.scalar_type());
    if (t < 0) throw new IllegalArgumentException(what + ": float32 or bfloat16, not " + x);
    return t;
  }

  private static int typeOf(ScalarType s) {
    if (s.value == ScalarType.Float.value) return F32;
    if (s.value == ScalarType.BFloat16.value) return BF16;
    return -1;
  }

  private void checkLike(Tensor t, String what, Tensor like, int type, long[] shape) {
    onDevice(t, what);
    var r = t.raw();
    if (typeOf(r.scalar_type()) != type || !Arrays.equals(shape(r), shape)) {
      throw new IllegalArgumentException(what + " " + t + " must match " + like);
    }
    if (!r.is_contiguous()) throw new IllegalArgumentException(what + " must be contiguous: " + t);
  }

  private void check(Tensor t, String what, int type, long numel) {
    onDevice(t, what);
    var r = t.raw();
    if (typeOf(r.scalar_type()) != type || r.numel() != numel || !r.is_contiguous()) {
      throw new IllegalArgumentException(
          what
              + " "
              + t
              + " must be "
              + numel
              + " contiguous "
              + (type == F32 ? DType.F32 : DType.BF16)
              + " elements");
    }
  }

  private void checkLabels(Tensor labels, long n) {
    onDevice(labels, "labels");
    var r = labels.raw();
    if (r.scalar_type().value != ScalarType.Long.value || r.numel() != n || !r.is_contiguous()) {
      throw new IllegalArgumentException(
          "labels " + labels + " must be " + n + " contiguous " + DType.I64 + " elements");
    }
  }
}
