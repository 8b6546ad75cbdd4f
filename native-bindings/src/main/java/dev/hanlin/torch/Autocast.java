package dev.hanlin.torch;

import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.DeviceType;

/**
 * Mixed precision: inside the guard, autocast-eligible ops (matmuls, linear, SDPA) on the device
 * run in {@code dtype} while weights stay float32. Thread-local, like PyTorch's autocast.
 */
public final class Autocast {
  private Autocast() {}

  /** Enables autocast to {@code dtype} on {@code device}'s kind until the guard closes. */
  public static Grad.Guard enable(Device device, DType dtype) {
    DeviceType kind = device.deviceType();
    torch.set_autocast_dtype(kind, dtype.scalarType());
    torch.set_autocast_enabled(kind, true);
    torch.increment_nesting();
    return () -> {
      if (torch.decrement_nesting() == 0) torch.clear_cache();
      torch.set_autocast_enabled(kind, false);
    };
  }

  /**
   * Drops the low-precision copies of weights that autocast keeps until its outermost guard closes.
   * Where each weight is used once per pass (a recomputing backward, block by block), keeping them
   * only holds a second copy of the model in memory.
   */
  public static void clearCache() {
    torch.clear_cache();
  }
}
