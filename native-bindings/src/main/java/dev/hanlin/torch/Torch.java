package dev.hanlin.torch;

import java.util.List;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/** Tensor creation and the neural-network functions the Llama model needs. */
public final class Torch {
  private Torch() {}

  static {
    JavaCppSettings.apply(); // before JavaCPP's Pointer class reads its settings
  }

  // ---- runtime ----

  public static boolean cudaAvailable() {
    return torch.cuda_is_available();
  }

  public static int cudaDeviceCount() {
    return torch.cuda_device_count();
  }

  public static void manualSeed(long seed) {
    torch.manual_seed(seed);
  }

  public static void setNumThreads(int n) {
    torch.set_num_threads(n);
  }

  public static int numThreads() {
    return torch.get_num_threads();
  }

  /** Waits for every queued kernel on the current CUDA device; a no-op on CPU-only runs. */
  public static void synchronize() {
    if (cudaAvailable()) torch.cuda_synchronize();
  }

  // ---- creation ----

  /** Shared per (dtype, device): never modify the result (its setters return copies anyway). */
  static TensorOptions options(DType dtype, Device device) {
    return Natives.options(dtype, device);
  }

  public static Tensor zeros(DType dtype, Device device, long... shape) {
    return new Tensor(torch.zeros(shape, options(dtype, device)));
  }

  public static Tensor ones(DType dtype, Device device, long... shape) {
    return new Tensor(torch.ones(shape, options(dtype, device)));
  }

  public static Tensor empty(DType dtype, Device device, long... shape) {
    return new Tensor(torch.empty(shape, options(dtype, device), Natives.NO_MEMORY_FORMAT));
  }

  public static Tensor full(double value, DType dtype, Device device, long... shape) {
    return new Tensor(torch.full(shape, Natives.scalar(value), options(dtype, device)));
  }

  /**
   * An uninitialized CPU tensor in page-locked (pinned) memory when CUDA is present, so that a
   * {@code to(cuda, ..., nonBlocking=true)} copy from it is truly asynchronous; a plain CPU tensor
   * otherwise (the CPU-only natives throw on pinning). libtorch's caching host allocator keeps a
   * freed pinned block until the copies that read it have finished.
   */
  public static Tensor emptyPinned(DType dtype, long... shape) {
    if (!cudaAvailable()) return empty(dtype, Device.CPU, shape);
    TensorOptions o =
        options(dtype, Device.CPU).pinned_memory(new org.bytedeco.pytorch.BoolOptional(true));
    return new Tensor(torch.empty(shape, o, Natives.NO_MEMORY_FORMAT));
  }

  /** {@code [0, 1, ..., n-1]}. */
  public static Tensor arange(long n, DType dtype, Device device) {
    return new Tensor(torch.arange(new Scalar(n), options(dtype, device)));
  }

  /** {@code [start, start+step, ... < end]}. */
  public static Tensor arange(double start, double end, double step, DType dtype, Device device) {
    return new Tensor(
        torch.arange(new Scalar(start), new Scalar(end), new Scalar(step), options(dtype, device)));
  }

  /** A copy of {@code values} with the given shape (int64, on the CPU). */
  public static Tensor fromLongs(long[] values, long... shape) {
    return new Tensor(torch.tensor(values).view(shape));
  }

  /** A copy of {@code values} with the given shape (float32, on the CPU). */
  public static Tensor fromFloats(float[] values, long... shape) {
    return new Tensor(torch.tensor(values).view(shape));
  }

  /**
   * A tensor over native memory that it does not own (for example a memory-mapped file): the memory
   * must outlive the tensor. Use {@link Tensor#copy()} to own the data.
   */
  public static Tensor fromAddress(long address, DType dtype, long... shape) {
    return new Tensor(
        torch.from_blob(new AddressPointer(address), shape, options(dtype, Device.CPU)));
  }

  /** Like {@link #fromAddress(long, DType, long...)} with explicit element strides. */
  public static Tensor fromAddress(long address, DType dtype, long[] shape, long[] strides) {
    return new Tensor(
        torch.from_blob(new AddressPointer(address), shape, strides, options(dtype, Device.CPU)));
  }

  /** JavaCPP keeps {@code address} protected; this is the one place that sets it. */
  private static final class AddressPointer extends Pointer {
    AddressPointer(long a) {
      this.address = a;
    }
  }

  public static Tensor randn(Generator gen, DType dtype, Device device, long... shape) {
    Tensor t = empty(DType.F32, Device.CPU, shape).normal_(0, 1, gen);
    return dtype == DType.F32 && !device.isCuda() ? t : t.to(device, dtype, false);
  }

  public static Tensor stack(List<Tensor> parts, int dim) {
    TensorVector v = new TensorVector();
    for (Tensor p : parts) v.push_back(p.raw());
    return new Tensor(torch.stack(v, dim));
  }

  /** The L2 norm of all of {@code t}'s elements as a 0-dim tensor, accumulated in {@code dtype}. */
  public static Tensor vectorNorm(Tensor t, DType dtype) {
    return new Tensor(
        torch.linalg_vector_norm(
            t.raw(),
            Natives.scalar(2.0),
            new org.bytedeco.pytorch.LongArrayRefOptional(),
            false,
            new org.bytedeco.pytorch.ScalarTypeOptional(dtype.scalarType())));
  }

  public static Tensor cat(List<Tensor> parts, int dim) {
    TensorVector v = new TensorVector();
    for (Tensor p : parts) v.push_back(p.raw());
    return new Tensor(torch.cat(v, dim));
  }

  public static Tensor outer(Tensor a, Tensor b) {
    return new Tensor(torch.outer(a.raw(), b.raw()));
  }

  // ---- neural network functions ----

  public static Tensor embedding(Tensor weight, Tensor ids) {
    return new Tensor(torch.embedding(weight.raw(), ids.raw()));
  }

  /** {@code x W^T (+ b)}; {@code bias} may be null. */
  public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
    return bias == null
        ? new Tensor(torch.linear(x.raw(), weight.raw()))
        : new Tensor(torch.linear(x.raw(), weight.raw(), bias.raw()));
  }

  /** RMS normalization over the last dimension, without a weight. */
  public static Tensor rmsNorm(Tensor x, double eps) {
    return new Tensor(
        torch.rms_norm(x.raw(), new long[] {x.size(-1)}, Natives.NO_TENSOR, Natives.optional(eps)));
  }

  /**
   * The token-level ignore label, the project's one copy: positions with this target add nothing to
   * the loss. An int because SFT's label arrays are int[]; it widens wherever libtorch takes a
   * long.
   */
  public static final int IGNORE_INDEX = -100;

  /**
   * Mean cross-entropy of {@code logits} (N, V) against {@code targets} (N), skipping {@link
   * #IGNORE_INDEX}.
   */
  public static Tensor crossEntropy(Tensor logits, Tensor targets) {
    return new Tensor(
        torch.cross_entropy_loss(
            logits.raw(),
            targets.raw(),
            Natives.NO_TENSOR,
            torch.Reduction.Mean.value,
            IGNORE_INDEX,
            0.0));
  }

  /** Summed cross-entropy over the targets that are not {@link #IGNORE_INDEX}. */
  public static Tensor crossEntropySum(Tensor logits, Tensor targets) {
    return new Tensor(
        torch.cross_entropy_loss(
            logits.raw(),
            targets.raw(),
            Natives.NO_TENSOR,
            torch.Reduction.Sum.value,
            IGNORE_INDEX,
            0.0));
  }

  /** The default CPU generator's state (a byte tensor), for checkpoints. */
  public static Tensor cpuRngState() {
    return new Tensor(torch.getDefaultCPUGenerator().get_state());
  }

  /** Restores a state from {@link #cpuRngState()}. */
  public static void setCpuRngState(Tensor state) {
    torch.getDefaultCPUGenerator().set_state(state.raw());
  }

  /**
   * The state of {@code device}'s default random generator (for CUDA the Philox seed and offset), a
   * small CPU tensor: what dropout on that device draws next.
   */
  public static Tensor rngState(Device device) {
    return new Tensor(torch.globalContext().defaultGenerator(Natives.device(device)).get_state());
  }

  /** Restores a state from {@link #rngState(Device)}. */
  public static void setRngState(Device device, Tensor state) {
    torch.globalContext().defaultGenerator(Natives.device(device)).set_state(state.raw());
  }

  public static Tensor silu(Tensor x) {
    return new Tensor(torch.silu(x.raw()));
  }

  /**
   * Zeroes each element with probability {@code p} and scales the rest by 1/(1-p) when training.
   */
  public static Tensor dropout(Tensor x, double p, boolean train) {
    return new Tensor(torch.dropout(x.raw(), p, train));
  }

  /**
   * libtorch's {@code native_dropout} in training, one kernel: {@code {x · m / (1-p), m}}, m bool.
   * On CUDA it is what {@link #dropout} runs (the same draw, the same values), with the mask that
   * op drops; on the CPU {@link #dropout} draws its own way (a scaled noise tensor).
   */
  public static Tensor[] nativeDropout(Tensor x, double p) {
    org.bytedeco.pytorch.T_TensorTensor_T r = torch.native_dropout(x.raw(), p, Natives.TRAIN);
    // the tuple's elements are references into it: copied (one more reference each) before it goes
    return new Tensor[] {
      new Tensor(new org.bytedeco.pytorch.Tensor(r.get0())),
      new Tensor(new org.bytedeco.pytorch.Tensor(r.get1()))
    };
  }

  /** {@code dy · mask · scale} as dropout's autograd backward computes it (one kernel). */
  public static Tensor nativeDropoutBackward(Tensor dy, Tensor mask, double scale) {
    return new Tensor(torch.native_dropout_backward(dy.raw(), mask.raw(), scale));
  }

  /**
   * Backpropagates {@code grads[i]} into {@code roots[i]} (same shapes) in one pass of the autograd
   * engine, so a weight reached from several roots gets their sum in one accumulation (and fires
   * its gradient hooks once, as data parallelism's reducer needs). A root may be a leaf.
   */
  public static void backward(List<Tensor> roots, List<Tensor> grads) {
    if (roots.size() != grads.size())
      throw new IllegalArgumentException(roots.size() + " roots but " + grads.size() + " grads");
    TensorVector r = new TensorVector(), g = new TensorVector();
    for (int i = 0; i < roots.size(); i++) {
      r.push_back(roots.get(i).raw());
      g.push_back(grads.get(i).raw());
    }
    torch.backward(r, g, new org.bytedeco.pytorch.BoolOptional(), false, new TensorVector());
  }

  /** Whether autograd records operations on this thread (false under no-grad and inference). */
  public static boolean gradEnabled() {
    return org.bytedeco.pytorch.GradMode.is_enabled();
  }

  /**
   * Scaled dot-product attention with an explicit mask: {@code mask} is bool, broadcastable to (B,
   * H, T, S), true where a query may attend to a key (every query row needs one true entry).
   */
  public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, Tensor mask) {
    boolean gqa = q.size(1) != k.size(1);
    return new Tensor(
        torch.scaled_dot_product_attention(
            q.raw(),
            k.raw(),
            v.raw(),
            new TensorOptional(mask.raw()),
            0.0,
            false,
            Natives.NO_DOUBLE,
            gqa));
  }

  /**
   * Scaled dot-product attention over {@code (B, H, T, D)} tensors; {@code k} and {@code v} may
   * have fewer heads (grouped-query attention).
   */
  public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, boolean causal) {
    boolean gqa = q.size(1) != k.size(1);
    return new Tensor(
        torch.scaled_dot_product_attention(
            q.raw(), k.raw(), v.raw(), Natives.NO_TENSOR, 0.0, causal, Natives.NO_DOUBLE, gqa));
  }
}
