package dev.hanlin.torch;

import org.bytedeco.pytorch.cuda.CUDAAllocator;
import org.bytedeco.pytorch.cuda.DeviceStats;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch_cuda;

/** CUDA memory statistics from libtorch's caching allocator (only call where CUDA is present). */
public final class Cuda {
  private Cuda() {}

  private static CUDAAllocator allocator() {
    if (!torch.cuda_is_available()) throw new IllegalStateException("CUDA is not available");
    return torch_cuda.getAllocator();
  }

  /** Peak bytes held by tensors on {@code device} since the last reset. */
  public static long peakAllocatedBytes(int device) {
    DeviceStats s = allocator().getDeviceStats((byte) device);
    return s.allocated_bytes().peak();
  }

  /** Peak bytes reserved from the driver by the caching allocator since the last reset. */
  public static long peakReservedBytes(int device) {
    DeviceStats s = allocator().getDeviceStats((byte) device);
    return s.reserved_bytes().peak();
  }

  /**
   * The device's name as CUDA reports it ({@code "NVIDIA H100 80GB HBM3"}), from {@code
   * at::cuda::getDeviceProperties}; null when it cannot be read (the CUDA runtime's Java classes
   * are not on the class path).
   */
  public static String deviceName(int device) {
    if (!torch.cuda_is_available()) throw new IllegalStateException("CUDA is not available");
    try {
      return torch_cuda.getDeviceProperties((byte) device).name().getString();
    } catch (LinkageError e) {
      return null;
    }
  }

  public static void resetPeak(int device) {
    allocator().resetPeakStats((byte) device);
  }
}
