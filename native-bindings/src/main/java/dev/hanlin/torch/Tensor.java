package dev.hanlin.torch;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Hanlin's tensor: a thin, owning wrapper of a libtorch tensor handle. Every method that makes a
 * new tensor returns a new wrapper; in-place methods (suffix {@code _}) return {@code this}. The
 * native handle belongs to the innermost open {@link Scope} when it was made, or to the GC when no
 * scope was open; {@link #retain()} lets a tensor outlive its scope.
 */
public final class Tensor implements AutoCloseable {
  private final org.bytedeco.pytorch.Tensor t;

  Tensor(org.bytedeco.pytorch.Tensor t) {
    this.t = t;
  }

  /** The libtorch handle, for code inside native-bindings and the rare caller that needs it. */
  public org.bytedeco.pytorch.Tensor raw() {
    return t;
  }

  /** Wraps a libtorch tensor made elsewhere. */
  public static Tensor wrap(org.bytedeco.pytorch.Tensor raw) {
    return new Tensor(raw);
  }

  // ---- shape and type ----

  public long[] shape() {
    int n = (int) t.dim();
    long[] s = new long[n];
    for (int i = 0; i < n; i++) s[i] = t.size(i);
    return s;
  }

  public long size(int dim) {
    return t.size(dim);
  }

  public int dim() {
    return (int) t.dim();
  }

  public long numel() {
    return t.numel();
  }

  public DType dtype() {
    return DType.of(t.scalar_type());
  }

  public Device device() {
    // is_cuda() answers without the native Device object device() allocates.
    return t.is_cuda() ? Device.of(t.device()) : Device.CPU;
  }

  public boolean isContiguous() {
    return t.is_contiguous();
  }

  /** Where this tensor's first element sits in its storage, in elements. */
  public long storageOffset() {
    return t.storage_offset();
  }

  /** Whether this tensor and {@code o} share one storage (views of the same memory). */
  public boolean isAliasOf(Tensor o) {
    return t.is_alias_of(o.t);
  }

  /** Bytes of this tensor's elements (numel times element size). */
  public long byteSize() {
    return numel() * dtype().byteSize();
  }

  // ---- views ----

  public Tensor view(long... shape) {
    return new Tensor(t.view(shape));
  }

  public Tensor reshape(long... shape) {
    return new Tensor(t.reshape(shape));
  }

  public Tensor transpose(int a, int b) {
    return new Tensor(t.transpose(a, b));
  }

  public Tensor contiguous() {
    return new Tensor(t.contiguous());
  }

  public Tensor narrow(int dim, long start, long length) {
    return new Tensor(t.narrow(dim, start, length));
  }

  /**
   * A view of this tensor's storage with the given sizes and strides, starting at element {@code
   * offset} of the storage (not of this tensor): it may reach memory outside this tensor's own
   * elements, so the caller states why that memory is what it wants.
   */
  public Tensor asStrided(long[] size, long[] stride, long offset) {
    return new Tensor(t.as_strided(size, stride, new LongOptional(offset)));
  }

  public Tensor select(int dim, long index) {
    return new Tensor(t.select(dim, index));
  }

  public Tensor unsqueeze(int dim) {
    return new Tensor(t.unsqueeze(dim));
  }

  public Tensor expand(long... shape) {
    return new Tensor(t.expand(shape));
  }

  public Tensor indexSelect(int dim, Tensor index) {
    return new Tensor(t.index_select(dim, index.t));
  }

  // ---- conversion ----

  public Tensor to(DType dtype) {
    return new Tensor(t.to(dtype.scalarType()));
  }

  public Tensor to(Device device) {
    return to(device, dtype(), false);
  }

  public Tensor to(Device device, DType dtype, boolean nonBlocking) {
    return new Tensor(
        t.to(
            Natives.device(device),
            dtype.scalarType(),
            nonBlocking,
            false,
            Natives.NO_MEMORY_FORMAT));
  }

  /** A float32 copy (or this tensor's float32 view when it already is one). */
  public Tensor toFloat() {
    return to(DType.F32);
  }

  /**
   * A copy of this CPU tensor in pinned memory when CUDA is present; this tensor itself otherwise
   * (pinning needs a CUDA runtime, and the CPU-only natives throw).
   */
  public Tensor pinMemory() {
    if (!Torch.cudaAvailable() || t.is_pinned()) return this;
    return new Tensor(t.pin_memory());
  }

  /** Whether this tensor lives in pinned (page-locked) host memory. */
  public boolean isPinned() {
    return Torch.cudaAvailable() && t.is_pinned();
  }

  public Tensor copy() {
    return new Tensor(t.clone());
  }

  public Tensor detach() {
    return new Tensor(t.detach());
  }

  // ---- arithmetic ----

  public Tensor add(Tensor o) {
    return new Tensor(t.add(o.t));
  }

  public Tensor add(double v) {
    return new Tensor(t.add(Natives.scalar(v)));
  }

  public Tensor sub(Tensor o) {
    return new Tensor(t.sub(o.t));
  }

  public Tensor mul(Tensor o) {
    return new Tensor(t.mul(o.t));
  }

  public Tensor mul(double v) {
    return new Tensor(t.mul(Natives.scalar(v)));
  }

  public Tensor div(Tensor o) {
    return new Tensor(t.div(o.t));
  }

  public Tensor div(double v) {
    return new Tensor(t.div(Natives.scalar(v)));
  }

  public Tensor neg() {
    return new Tensor(t.neg());
  }

  /** Elementwise {@code max(this, v)}. */
  public Tensor clampMin(double v) {
    return new Tensor(t.clamp_min(Natives.scalar(v)));
  }

  /** Bool: true where the element is neither NaN nor infinite. */
  public Tensor isFinite() {
    return new Tensor(t.isfinite());
  }

  public Tensor logicalNot() {
    return new Tensor(t.logical_not());
  }

  public Tensor pow(double e) {
    return new Tensor(t.pow(Natives.scalar(e)));
  }

  public Tensor exp() {
    return new Tensor(t.exp());
  }

  public Tensor cos() {
    return new Tensor(t.cos());
  }

  public Tensor sin() {
    return new Tensor(t.sin());
  }

  public Tensor rsqrt() {
    return new Tensor(t.rsqrt());
  }

  public Tensor abs() {
    return new Tensor(t.abs());
  }

  public Tensor matmul(Tensor o) {
    return new Tensor(t.matmul(o.t));
  }

  /** Mean over one dimension. */
  public Tensor mean(int dim, boolean keepDim) {
    return new Tensor(t.mean(new long[] {dim}, keepDim, Natives.NO_SCALAR_TYPE));
  }

  /** Mean over every element, a 0-dim tensor. */
  public Tensor mean() {
    return new Tensor(t.mean());
  }

  public Tensor sum() {
    return new Tensor(t.sum());
  }

  public Tensor max() {
    return new Tensor(t.max());
  }

  public Tensor argmax(int dim) {
    return new Tensor(t.argmax(new LongOptional(dim), false));
  }

  public Tensor softmax(int dim) {
    return new Tensor(t.softmax(dim));
  }

  /** Elementwise equality, as a bool tensor. */
  public Tensor eq(Tensor o) {
    return new Tensor(t.eq(o.t));
  }

  /** Elementwise {@code != v}, as a bool tensor. */
  public Tensor ne(long v) {
    return new Tensor(t.ne(new Scalar(v)));
  }

  /** Elementwise {@code >=}, as a bool tensor (broadcasting). */
  public Tensor ge(Tensor o) {
    return new Tensor(t.ge(o.t));
  }

  public Tensor and(Tensor o) {
    return new Tensor(t.logical_and(o.t));
  }

  // ---- in place (return this; never close the result separately) ----

  public Tensor copy_(Tensor src) {
    t.copy_(src.t);
    return this;
  }

  public Tensor fill_(double v) {
    t.fill_(Natives.scalar(v));
    return this;
  }

  /** Copies the rows of {@code src} into the positions {@code index} (int64) along {@code dim}. */
  public Tensor indexCopy_(int dim, Tensor index, Tensor src) {
    t.index_copy_(dim, index.t, src.t);
    return this;
  }

  /**
   * Makes this tensor show {@code src}'s storage, sizes and strides; its identity (the handles that
   * refer to it, its autograd metadata) stays. How parameter sharding points a weight at memory
   * gathered from the ranks; a leaf that requires grad takes it only under no-grad.
   */
  public Tensor set_(Tensor src) {
    t.set_(src.t);
    return this;
  }

  /** Drops this tensor's storage: it becomes empty (shape [0]), dtype and device kept. */
  public Tensor setEmpty_() {
    t.set_();
    return this;
  }

  public Tensor zero_() {
    t.zero_();
    return this;
  }

  /**
   * {@code this += value · a · b} in one pass (broadcasting; {@code b} may be a bool mask, cast to
   * this tensor's dtype as the kernel reads it).
   */
  public Tensor addcmul_(Tensor a, Tensor b, double value) {
    t.addcmul_(a.t, b.t, Natives.scalar(value));
    return this;
  }

  public Tensor mul_(double v) {
    t.mul_(Natives.scalar(v));
    return this;
  }

  /** {@code this = beta · this + alpha · (a @ b)}, one GEMM writing in place (may be a view). */
  public Tensor addmm_(Tensor a, Tensor b, double beta, double alpha) {
    t.addmm_(a.t, b.t, Natives.scalar(beta), Natives.scalar(alpha));
    return this;
  }

  /** Fills with N(mean, std²) from the given generator. */
  public Tensor normal_(double mean, double std, Generator gen) {
    t.normal_(mean, std, new GeneratorOptional(gen.raw()));
    return this;
  }

  /** Fills with U(from, to) from the given generator. */
  public Tensor uniform_(double from, double to, Generator gen) {
    t.uniform_(from, to, new GeneratorOptional(gen.raw()));
    return this;
  }

  // ---- autograd ----

  public Tensor requiresGrad(boolean on) {
    t.requires_grad_(on);
    return this;
  }

  public boolean requiresGrad() {
    return t.requires_grad();
  }

  /** The gradient as an owning handle, or null when there is none. */
  public Tensor grad() {
    org.bytedeco.pytorch.Tensor g = t.grad();
    if (g == null || !g.defined()) return null;
    return new Tensor(new org.bytedeco.pytorch.Tensor(g));
  }

  /** Drops the gradient (HF's {@code zero_grad(set_to_none=True)}). */
  public void clearGrad() {
    t.mutable_grad().put(new org.bytedeco.pytorch.Tensor());
  }

  public void backward() {
    t.backward();
  }

  /** Backpropagates {@code gradient} (same shape as this tensor) into the graph behind it. */
  public void backward(Tensor gradient) {
    t.backward(
        gradient.t,
        new org.bytedeco.pytorch.BoolOptional(),
        false,
        new org.bytedeco.pytorch.TensorArrayRefOptional());
  }

  // ---- to Java ----

  /** The elements as floats (any float dtype, any device), row-major. */
  public float[] toFloatArray() {
    if (numel() == 0) return new float[0];
    try (Scope s = Scope.open()) {
      org.bytedeco.pytorch.Tensor c =
          t.to(Natives.CPU, ScalarType.Float, false, false, Natives.NO_MEMORY_FORMAT).contiguous();
      float[] out = new float[(int) c.numel()];
      new FloatPointer(c.data_ptr()).get(out);
      return out;
    }
  }

  /** The elements as longs (any integer dtype, any device), row-major. */
  public long[] toLongArray() {
    if (numel() == 0) return new long[0];
    try (Scope s = Scope.open()) {
      org.bytedeco.pytorch.Tensor c =
          t.to(Natives.CPU, ScalarType.Long, false, false, Natives.NO_MEMORY_FORMAT).contiguous();
      long[] out = new long[(int) c.numel()];
      new LongPointer(c.data_ptr()).get(out);
      return out;
    }
  }

  /** The single element as a double (synchronizes with the device). */
  public double item() {
    return t.item().toDouble();
  }

  /** The address of the first element (the tensor must be contiguous and on the CPU). */
  public long dataAddress() {
    Pointer p = t.data_ptr();
    return p.address();
  }

  // ---- lifetime ----

  /** Keeps the native handle alive past the current scope; returns this. */
  public Tensor retain() {
    t.retainReference();
    return this;
  }

  /** Drops a reference taken by {@link #retain()}. */
  public void release() {
    t.releaseReference();
  }

  public boolean isClosed() {
    return t.isNull();
  }

  @Override
  public void close() {
    t.close();
  }

  @Override
  public String toString() {
    return "Tensor" + java.util.Arrays.toString(shape()) + " " + dtype() + " " + device();
  }

  static DoubleOptional optional(double v) {
    return new DoubleOptional(v);
  }

  static {
    JavaCppSettings.apply(); // before JavaCPP's Pointer class reads its settings
    torch.get_num_threads(); // loads the native library once, on first use
  }
}
