package dev.hanlin.torch;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReferenceArray;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.DeviceType;

/**
 * Native argument objects that every op would otherwise allocate per call: empty optionals, the
 * native devices, tensor options per (dtype, device) and the eps of the norms. Each JavaCPP object
 * costs a JNI allocation plus JavaCPP's bookkeeping (a deallocator, a phantom reference, a scope
 * entry), as much as the op's own result, so sharing them cuts the host time per op. They are
 * passed to libtorch by const reference, which only reads them, so one object serves all threads.
 *
 * <p>Each is retained once more than its scope releases it ({@link #forever}), so that a first use
 * inside a {@link Scope} does not free it when that scope closes; a static final field keeps it
 * from the GC.
 */
final class Natives {
  static {
    JavaCppSettings.apply();
  }

  static final TensorOptional NO_TENSOR = forever(new TensorOptional());
  static final DoubleOptional NO_DOUBLE = forever(new DoubleOptional());
  static final MemoryFormatOptional NO_MEMORY_FORMAT = forever(new MemoryFormatOptional());
  static final ScalarTypeOptional NO_SCALAR_TYPE = forever(new ScalarTypeOptional());
  static final org.bytedeco.pytorch.BoolOptional TRAIN =
      forever(new org.bytedeco.pytorch.BoolOptional(true));
  static final org.bytedeco.pytorch.Device CPU =
      forever(new org.bytedeco.pytorch.Device(DeviceType.CPU));

  private static final ConcurrentHashMap<Integer, org.bytedeco.pytorch.Device> CUDA =
      new ConcurrentHashMap<>();
  private static final ConcurrentHashMap<Device, AtomicReferenceArray<TensorOptions>> OPTIONS =
      new ConcurrentHashMap<>();
  private static final ConcurrentHashMap<Double, DoubleOptional> DOUBLES =
      new ConcurrentHashMap<>();

  private static final ConcurrentHashMap<Double, Scalar> SCALARS = new ConcurrentHashMap<>();

  /** Distinct doubles kept (eps values); past this, callers get a fresh object per call. */
  private static final int MAX_DOUBLES = 64;

  /** Distinct scalars kept (model constants; a learning rate per step would fill it once). */
  private static final int MAX_SCALARS = 256;

  private Natives() {}

  static org.bytedeco.pytorch.Device device(Device d) {
    if (!d.isCuda()) return CPU;
    return CUDA.computeIfAbsent(
        d.index(), i -> forever(new org.bytedeco.pytorch.Device(DeviceType.CUDA, (byte) (int) i)));
  }

  /** {@code TensorOptions(dtype).device(device)}, made once per pair. */
  static TensorOptions options(DType dtype, Device device) {
    AtomicReferenceArray<TensorOptions> byType =
        OPTIONS.computeIfAbsent(device, d -> new AtomicReferenceArray<>(DType.values().length));
    TensorOptions o = byType.get(dtype.ordinal());
    if (o != null) return o;
    // A race makes two equal objects; the loser stays retained, a one-time leak of a few bytes.
    o = forever(new TensorOptions(dtype.scalarType()).device(new DeviceOptional(device(device))));
    return byType.compareAndSet(dtype.ordinal(), null, o) ? o : byType.get(dtype.ordinal());
  }

  /** {@code DoubleOptional(v)}, shared for the few values the norms use. */
  static DoubleOptional optional(double v) {
    DoubleOptional o = DOUBLES.get(v);
    if (o != null) return o;
    if (DOUBLES.size() >= MAX_DOUBLES) return new DoubleOptional(v);
    return DOUBLES.computeIfAbsent(v, x -> forever(new DoubleOptional(x)));
  }

  /** {@code Scalar(v)} (a double scalar), shared for the first few hundred distinct values. */
  static Scalar scalar(double v) {
    Scalar s = SCALARS.get(v);
    if (s != null) return s;
    if (SCALARS.size() >= MAX_SCALARS) return new Scalar(v);
    return SCALARS.computeIfAbsent(v, x -> forever(new Scalar(x)));
  }

  private static <P extends Pointer> P forever(P p) {
    return p.retainReference();
  }
}
