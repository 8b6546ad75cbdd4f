package dev.hanlin.train.hooks;

import dev.hanlin.torch.Cuda;
import dev.hanlin.torch.Device;
import java.util.function.IntToLongFunction;

/**
 * Turns libtorch's "out of memory" into what to change: the model's size, the micro-batch, and the
 * peak memory of the device this rank trains on.
 */
public final class OutOfMemory {
  private final long parameters;
  private final int batchSize, block;
  private final Device device;
  private final IntToLongFunction peakBytes; // device index to its peak allocated bytes

  public OutOfMemory(long parameters, int batchSize, int block, Device device) {
    this(parameters, batchSize, block, device, Cuda::peakAllocatedBytes);
  }

  OutOfMemory(
      long parameters, int batchSize, int block, Device device, IntToLongFunction peakBytes) {
    this.parameters = parameters;
    this.batchSize = batchSize;
    this.block = block;
    this.device = device;
    this.peakBytes = peakBytes;
  }

  /** {@code e} explained when it is an out-of-memory error, else {@code e} itself. */
  public RuntimeException explain(RuntimeException e) {
    String m = String.valueOf(e.getMessage());
    if (!m.contains("out of memory")) return e;
    String peak =
        device.isCuda()
            ? String.format(
                ", CUDA peak %.1f GiB", peakBytes.applyAsLong(device.index()) / 1073741824.0)
            : "";
    return new IllegalStateException(
        String.format(
            "out of memory: %,d parameters (fp32 weights, gradients and AdamW state ~%.1f GiB), micro-batch %d x %d tokens%s;"
                + " lower per_device_train_batch_size (raise gradient_accumulation_steps to keep the batch) or block_size",
            parameters, parameters * 16 / 1073741824.0, batchSize, block, peak),
        e);
  }
}
