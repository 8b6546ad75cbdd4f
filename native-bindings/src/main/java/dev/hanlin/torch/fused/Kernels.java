package dev.hanlin.torch.fused;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.DeviceType;

/**
 * Which {@link BlockOps} a device runs, and the autocast state the explicit block pass reads: it
 * runs its GEMMs in autocast's dtype by casting explicitly, with autocast itself suspended, so that
 * what each product computes in is decided in one place and not per op.
 */
public final class Kernels {
  private Kernels() {}

  private static final java.util.Map<Integer, BlockOps> CUDA =
      new java.util.concurrent.ConcurrentHashMap<>();

  /**
   * The block ops for {@code device}: on CUDA the NVRTC kernels (compiled or read from the cache
   * once per device), elsewhere the plain-libtorch reference; {@code -Dhanlin.nvrtc=false} keeps
   * the reference on CUDA too (to measure what the kernels gain).
   */
  public static BlockOps forDevice(Device device) {
    if (!device.isCuda() || !Boolean.parseBoolean(System.getProperty("hanlin.nvrtc", "true")))
      return ReferenceOps.reference();
    return CUDA.computeIfAbsent(device.index(), i -> NvrtcOps.forDevice(device));
  }

  /** The dtype autocast computes in on {@code device}'s kind, or null when it is off. */
  public static DType autocastDtype(Device device) {
    DeviceType kind = kind(device);
    if (!torch.is_autocast_enabled(kind)) return null;
    // native enums are not the canonical constants (javacpp-pytorch.md, pitfall 1): by value
    int v = torch.get_autocast_dtype(kind).value;
    if (v == torch.ScalarType.BFloat16.value) return DType.BF16;
    if (v == torch.ScalarType.Half.value) return DType.F16;
    return DType.F32;
  }

  /** Turns autocast off on {@code device}'s kind until closed, then on again if it was. */
  public static Grad.Guard suspendAutocast(Device device) {
    DeviceType kind = kind(device);
    boolean was = torch.is_autocast_enabled(kind);
    if (was) torch.set_autocast_enabled(kind, false);
    return () -> {
      if (was) torch.set_autocast_enabled(kind, true);
    };
  }

  private static DeviceType kind(Device device) {
    return device.isCuda() ? DeviceType.CUDA : DeviceType.CPU;
  }
}
