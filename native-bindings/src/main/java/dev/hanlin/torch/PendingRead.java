package dev.hanlin.torch;

/**
 * A few numbers on the device on their way to the host, without making the host wait for the GPU.
 * On CUDA the copy into pinned memory is queued behind the work that computes them and followed by
 * an event; {@link #values} waits for that event alone. Reading a step's loss this way one step
 * later costs the training loop nothing, where {@code loss.item()} would drain the GPU's queue
 * every step. On the CPU the numbers are ready at once.
 *
 * <p>The event also times the GPU: {@link #secondsSince} is the time between two reads' events on
 * the device, i.e. how long the work queued between them took, idle gaps included, whether or not
 * the host waited for it. (Host clocks around {@link #values} cannot say that: when the host is the
 * slower side, a value is ready before it is asked for.)
 */
public final class PendingRead implements AutoCloseable {
  private final Tensor host;
  private final Object event; // a CUDAEvent, or null on the CPU
  private final long hostNanos; // when it was queued, for the CPU
  private boolean waited;

  private PendingRead(Tensor host, Object event) {
    this.host = host;
    this.event = event;
    this.hostNanos = System.nanoTime();
  }

  /** Starts copying {@code t} (a small tensor) to the host. */
  public static PendingRead of(Tensor t) {
    Device d = t.device();
    if (!d.isCuda()) return new PendingRead(t.detach().toFloat().copy().retain(), null);
    Tensor host = Torch.empty(DType.F32, Device.CPU, t.shape()).pinMemory().retain();
    host.raw().copy_(t.detach().toFloat().raw(), true);
    return new PendingRead(host, OnCuda.record(d.index()));
  }

  /** The numbers, waiting for the copy if it is still under way. */
  public float[] values() {
    if (event != null && !waited) OnCuda.synchronize(event);
    waited = true;
    return host.toFloatArray();
  }

  /**
   * Seconds between {@code earlier}'s event and this one's on the GPU (both must have been waited
   * for through {@link #values}); on the CPU, between the two reads' creation.
   */
  public double secondsSince(PendingRead earlier) {
    if (event == null || earlier.event == null) return (hostNanos - earlier.hostNanos) / 1e9;
    return OnCuda.millisBetween(earlier.event, event) / 1e3;
  }

  /** Frees the host copy and the event. */
  @Override
  public void close() {
    host.release();
    if (event != null) OnCuda.release(event);
  }

  /** CUDA classes, loaded only where CUDA is used. */
  private static final class OnCuda {
    static Object record(int device) {
      var e = new org.bytedeco.pytorch.cuda.CUDAEvent(0); // flags 0: with timing
      e.retainReference(); // outlives the scope it is made in, as the pinned copy does
      e.record(org.bytedeco.pytorch.global.torch_cuda.getCurrentCUDAStream((byte) device));
      return e;
    }

    static void synchronize(Object e) {
      ((org.bytedeco.pytorch.cuda.CUDAEvent) e).synchronize();
    }

    static double millisBetween(Object from, Object to) {
      return ((org.bytedeco.pytorch.cuda.CUDAEvent) from)
          .elapsed_time((org.bytedeco.pytorch.cuda.CUDAEvent) to);
    }

    static void release(Object e) {
      ((org.bytedeco.pytorch.cuda.CUDAEvent) e).releaseReference();
    }
  }
}
