package dev.hanlin.train.hooks;

import dev.hanlin.model.LlamaConfig;
import dev.hanlin.torch.Cuda;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.PendingRead;
import dev.hanlin.train.metrics.Mfu;
import java.util.function.IntFunction;

/**
 * Each step's time, tokens per second and MFU. A step's time is on the GPU since the previous step
 * ended there; after a pause (evaluation, a checkpoint) or for the first step, on the host since
 * the step began.
 */
public final class Throughput {
  private final double flopsPerToken, peak;
  private final int world;
  private PendingRead lastRead; // the last step read back, for timing the next on the GPU

  public Throughput(LlamaConfig config, int block, Device device, int world) {
    this(Mfu.flopsPerToken(config, block), peakOf(device, Cuda::deviceName), world);
  }

  Throughput(double flopsPerToken, double peak, int world) {
    this.flopsPerToken = flopsPerToken;
    this.peak = peak;
    this.world = world;
  }

  /** The dense bf16 peak of {@code device}, from its name; NaN for a CPU or an unknown GPU. */
  static double peakOf(Device device, IntFunction<String> nameOf) {
    return device.isCuda() ? Mfu.peakFlopsPerSecond(nameOf.apply(device.index())) : Double.NaN;
  }

  public double flopsPerToken() {
    return flopsPerToken;
  }

  public double peak() {
    return peak;
  }

  /** The seconds of the step whose values are {@code values}, queued at {@code startNanos}. */
  public double seconds(PendingRead values, long startNanos) {
    double sec =
        lastRead != null ? values.secondsSince(lastRead) : (System.nanoTime() - startNanos) / 1e9;
    forget();
    lastRead = values;
    return sec;
  }

  /** MFU at {@code tokensPerSecond} over all ranks, NaN without a known peak. */
  public double mfu(double tokensPerSecond) {
    return Mfu.mfu(tokensPerSecond / world, flopsPerToken, peak);
  }

  /** After a pause: the next step is timed on the host. */
  public void forget() {
    if (lastRead != null) lastRead.close();
    lastRead = null;
  }
}
