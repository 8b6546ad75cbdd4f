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
 * contiguous, except RoPE's inputs, which may be any strided (B, heads, T, D) views such as
 * transposed projections, and SwiGLU's, which may be 2-D with any row stride (column slices of the
 * fused gate/up output); RMSNorm rows of at most {@link BlockKernels#MAX_NORM_COLUMNS}; labels
 * int64. Outputs are new contiguous tensors (RoPE's (B, H, T, D); {@link #ropeQk}'s are views of
 * one (B, T, H+KV, D) tensor). A label outside [0, V) other than -100 makes that row's loss NaN (a
 * kernel cannot throw). The memory-bound kernels move 16-byte vectors where the row length and
 * alignment allow and fall back to elements otherwise (same arithmetic, {@code block_ops.cu}).
 *
 * <p>Host cost per call is what limits these kernels (they run in tens of µs), so the per-call path
 * makes no native object but the outputs and the stream query: kernel functions are resolved once,
 * tensor options are made once, checks read libtorch's fields directly (no {@code Device} object
 * per check), and the launch arguments go into a per-thread reusable block ({@link LaunchArgs}).
 */
public final class NvrtcOps implements BlockOps {
  private static final long GRID_STRIDE_BLOCKS = 8192;
  private static final int F32 = 0, BF16 = 1; // kernel variant: index into TYPES
  private static final int THREADS = BlockKernels.ELEMENTWISE_THREADS;

  /** The kernels with one variant per element type ({@code <prefix><f32|bf16>}). */
  private enum Kernel {
    RMSNORM_FWD("rmsnorm_fwd_"),
    ADD_RMSNORM_FWD("add_rmsnorm_fwd_"),
    RMSNORM_BWD("rmsnorm_bwd_"),
    ROPE_FWD("rope_fwd_"),
    ROPE_BWD("rope_bwd_"),
    ROPE_QK_FWD("rope_qk_fwd_"),
    ROPE_QKV_BWD("rope_qkv_bwd_"),
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
    return rmsNormBackward(dy, x, weight, rstd, null);
  }

  /** The residual's gradient (null: none) is added to dx by the kernel, in the same pass. */
  @Override
  public NormGrads rmsNormBackward(
      Tensor dy, Tensor x, Tensor weight, Tensor rstd, Tensor residual) {
    var r = x.raw();
    int t = type(x, "x");
    long[] shape = shape(r);
    long c = shape[shape.length - 1];
    long n = r.numel() / c;
    checkLike(dy, "dy", x, t, shape);
    check(weight, "weight", t, c);
    check(rstd, "rstd", F32, n);
    if (residual != null) checkLike(residual, "residual", x, t, shape);
    int threads = BlockKernels.normThreads(c);
    var l = BlockKernels.NormBackwardLaunch.of(n);
    Tensor dx = empty(t, shape);
    Tensor partial = empty(F32, l.blocks(), c);
    Tensor dw = empty(F32, c);
    var a = LaunchArgs.ofThisThread();
    a.i64(ptr(dy)).i64(ptr(x)).i64(ptr(weight)).i64(ptr(rstd));
    a.i64(residual == null ? 0 : ptr(residual)).i64(ptr(dx)).i64(ptr(partial));
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

  /** Both in one launch, into one (B, T, H+KV, D) tensor; q and k are views of it. */
  @Override
  public RotatedQk ropeQk(Tensor q, Tensor k, Tensor cos, Tensor sin) {
    q = unitLast(q, "q");
    k = unitLast(k, "k");
    int t = typeAnyLayout(q, "q");
    long[] qs = shape(q.raw()), ks = shape(k.raw());
    long b = qs[0], h = qs[1], tt = qs[2], d = qs[3], kv = ks[1];
    checkHeads(k, "k", q, t, ks, b, tt, d);
    Tensor c = table(cos, "cos", q, t, qs), s = table(sin, "sin", q, t, qs);
    long cosB = cosBatch(cos, b, tt, d);
    Tensor out = empty(t, b, tt, h + kv, d);
    var kr = k.raw();
    var qr = q.raw();
    var a = LaunchArgs.ofThisThread();
    a.i64(ptr(q)).i64(ptr(k)).i64(ptr(c)).i64(ptr(s)).i64(ptr(out));
    a.i32((int) h).i32((int) kv).i32((int) tt).i32((int) d);
    a.i64(qr.stride(0)).i64(qr.stride(1)).i64(qr.stride(2));
    a.i64(kr.stride(0)).i64(kr.stride(1)).i64(kr.stride(2));
    a.i64((h + kv) * d).i64(cosB);
    int lanes =
        ropeLanes(
            t,
            d,
            new long[] {ptr(q), ptr(k), ptr(c), ptr(s), ptr(out)},
            qr.stride(0),
            qr.stride(1),
            qr.stride(2),
            kr.stride(0),
            kr.stride(1),
            kr.stride(2),
            cosB);
    a.i32(lanes);
    int blocks = BlockKernels.elementwiseBlocks(tt * d / 2 / lanes, Integer.MAX_VALUE);
    launch(Kernel.ROPE_QK_FWD, t, blocks, b * (h + kv), BlockKernels.ELEMENTWISE_THREADS, a);
    return new RotatedQk(out.narrow(2, 0, h).transpose(1, 2), out.narrow(2, h, kv).transpose(1, 2));
  }

  /** One launch writes the rotated dq, dk and the copied dv as rows of the fused projection. */
  @Override
  public Tensor ropeQkvBackward(Tensor dq, Tensor dk, Tensor dv, Tensor cos, Tensor sin) {
    dq = unitLast(dq, "dq");
    dk = unitLast(dk, "dk");
    dv = unitLast(dv, "dv");
    int t = typeAnyLayout(dq, "dq");
    long[] qs = shape(dq.raw()), ks = shape(dk.raw());
    long b = qs[0], h = qs[1], tt = qs[2], d = qs[3], kv = ks[1];
    checkHeads(dk, "dk", dq, t, ks, b, tt, d);
    checkHeads(dv, "dv", dq, t, shape(dv.raw()), b, tt, d);
    if (dv.size(1) != kv) throw new IllegalArgumentException("dv " + dv + " must match dk " + dk);
    Tensor c = table(cos, "cos", dq, t, qs), s = table(sin, "sin", dq, t, qs);
    long cosB = cosBatch(cos, b, tt, d);
    long width = (h + 2 * kv) * d;
    Tensor out = empty(t, b * tt, width);
    var qr = dq.raw();
    var kr = dk.raw();
    var vr = dv.raw();
    var a = LaunchArgs.ofThisThread();
    a.i64(ptr(dq)).i64(ptr(dk)).i64(ptr(dv)).i64(ptr(c)).i64(ptr(s)).i64(ptr(out));
    a.i32((int) h).i32((int) kv).i32((int) tt).i32((int) d);
    a.i64(qr.stride(0)).i64(qr.stride(1)).i64(qr.stride(2));
    a.i64(kr.stride(0)).i64(kr.stride(1)).i64(kr.stride(2));
    a.i64(vr.stride(0)).i64(vr.stride(1)).i64(vr.stride(2));
    a.i64(width).i64(cosB);
    int lanes =
        ropeLanes(
            t,
            d,
            new long[] {ptr(dq), ptr(dk), ptr(dv), ptr(c), ptr(s), ptr(out)},
            qr.stride(0),
            qr.stride(1),
            qr.stride(2),
            kr.stride(0),
            kr.stride(1),
            kr.stride(2),
            vr.stride(0),
            vr.stride(1),
            vr.stride(2),
            width,
            cosB);
    a.i32(lanes);
    int blocks = BlockKernels.elementwiseBlocks(tt * d / 2 / lanes, Integer.MAX_VALUE);
    launch(Kernel.ROPE_QKV_BWD, t, blocks, b * (h + 2 * kv), BlockKernels.ELEMENTWISE_THREADS, a);
    return out;
  }

  /**
   * Elements a thread of the q/k/v RoPE kernels takes from each half of a head: a 16-byte vector (4
   * float, 8 bf16) when D/2, every stride (elements) and every pointer allow it, else 1. The kernel
   * trusts this (a misaligned vector load would fault), so it is decided here, once.
   */
  private static int ropeLanes(int type, long d, long[] pointers, long... strides) {
    int l = type == F32 ? 4 : 8;
    if ((d / 2) % l != 0) return 1;
    for (long p : pointers) if (p % 16 != 0) return 1;
    for (long s : strides) if (s % l != 0) return 1;
    return l;
  }

  /** x (B, heads, T, D) with unit stride along D (a copy when not, which attention never gives). */
  private static Tensor unitLast(Tensor x, String what) {
    var r = x.raw();
    if (r.dim() != 4) throw new IllegalArgumentException(what + " must be (B, heads, T, D): " + x);
    return r.stride(3) == 1 ? x : x.contiguous();
  }

  /** heads (B, *, T, D) of like's dtype, B, T and D; the launch's index limits. */
  private void checkHeads(
      Tensor x, String what, Tensor like, int type, long[] s, long b, long tt, long d) {
    onDevice(x, what);
    if (typeOf(x.raw().scalar_type()) != type || s[0] != b || s[2] != tt || s[3] != d) {
      throw new IllegalArgumentException(what + " " + x + " must match " + like);
    }
    if (d % 2 != 0) throw new IllegalArgumentException("RoPE head dim must be even: " + like);
    if (b * (like.size(1) + 2 * s[1]) > 65535 || tt * d > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("RoPE takes B*heads <= 65535 and T*D < 2^31: " + like);
    }
  }

  /** The cos/sin tables' batch stride: T·D for (B, 1, T, D) with B > 1, else 0. */
  private static long cosBatch(Tensor cos, long b, long tt, long d) {
    var cr = cos.raw();
    return cr.dim() == 4 && cr.size(0) == b && b > 1 ? tt * d : 0;
  }

  // ---- SwiGLU ----

  @Override
  public Tensor swiglu(Tensor gate, Tensor up) {
    int t = typeAnyLayout(gate, "gate");
    Mat g = mat(gate, "gate", t, null), u = mat(up, "up", t, g);
    Tensor y = empty(t, shape(gate.raw()));
    var a = LaunchArgs.ofThisThread().i64(ptr(g.t())).i64(ptr(u.t())).i64(ptr(y));
    a.i64(g.rows()).i32((int) g.cols()).i64(g.stride()).i64(u.stride()).i64(g.cols());
    launch(Kernel.SWIGLU_FWD, t, swigluBlocks(g.rows() * g.cols(), t), 1, THREADS, a);
    return y;
  }

  @Override
  public SwigluGrads swigluBackward(Tensor dy, Tensor gate, Tensor up) {
    int t = typeAnyLayout(gate, "gate");
    long[] shape = shape(gate.raw());
    Tensor dg = empty(t, shape);
    Tensor du = empty(t, shape);
    swigluBackward(dy, gate, up, t, dg, du, shape[shape.length - 1]);
    return new SwigluGrads(dg, du);
  }

  /** dgate and dup written into the two halves of one (N, 2I) tensor. */
  @Override
  public Tensor swigluBackwardJoined(Tensor dy, Tensor gate, Tensor up) {
    int t = typeAnyLayout(gate, "gate");
    long[] shape = shape(gate.raw());
    long cols = shape[shape.length - 1];
    Tensor out = empty(t, gate.raw().numel() / cols, 2 * cols);
    swigluBackward(dy, gate, up, t, out, out.narrow(1, cols, cols), 2 * cols);
    return out;
  }

  /** dg and du: row-major with row stride {@code outStride}. */
  private void swigluBackward(
      Tensor dy, Tensor gate, Tensor up, int t, Tensor dg, Tensor du, long outStride) {
    Mat g = mat(gate, "gate", t, null), u = mat(up, "up", t, g), d = mat(dy, "dy", t, g);
    var a = LaunchArgs.ofThisThread();
    a.i64(ptr(d.t())).i64(ptr(g.t())).i64(ptr(u.t())).i64(ptr(dg)).i64(ptr(du));
    a.i64(g.rows()).i32((int) g.cols()).i64(d.stride()).i64(g.stride()).i64(u.stride());
    a.i64(outStride).i64(outStride);
    launch(Kernel.SWIGLU_BWD, t, swigluBlocks(g.rows() * g.cols(), t), 1, THREADS, a);
  }

  /**
   * A SwiGLU operand as a row-major matrix: a 2-D tensor with unit column stride as it is (any row
   * stride: a column slice), anything else contiguous, as (numel / last dim, last dim).
   */
  private record Mat(Tensor t, long rows, long cols, long stride) {}

  private Mat mat(Tensor x, String what, int type, Mat like) {
    onDevice(x, what);
    var r = x.raw();
    if (r.dim() == 0 || typeOf(r.scalar_type()) != type) {
      throw new IllegalArgumentException(what + " " + x + ": float32 or bfloat16 like the gate");
    }
    long cols = r.size(r.dim() - 1);
    Mat m;
    if (r.dim() == 2 && r.stride(1) == 1 && r.stride(0) >= cols) {
      m = new Mat(x, r.size(0), cols, r.stride(0));
    } else {
      Tensor c = r.is_contiguous() ? x : x.contiguous();
      m = new Mat(c, cols == 0 ? 0 : r.numel() / cols, cols, cols);
    }
    if (like != null && (m.rows() != like.rows() || m.cols() != like.cols())) {
      throw new IllegalArgumentException(what + " " + x + " must match the gate's shape");
    }
    if (cols > Integer.MAX_VALUE) throw new IllegalArgumentException(what + ": rows too long");
    return m;
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
