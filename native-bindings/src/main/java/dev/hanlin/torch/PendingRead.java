package dev.hanlin.torch;

/**
 * A few numbers on the device on their way to the host, without making the host wait for the GPU.
 * On CUDA the copy into pinned memory is queued behind the work that computes them and followed by
 * an event; {@link #values} waits for that event alone. Reading a step's loss this way one step
 * later costs the training loop nothing, where {@code loss.item()} would drain the GPU's queue
 * every step. On the CPU the numbers are ready at once.
 */
public final class PendingRead {
  private final Tensor host;
  private final Runnable await;

  private PendingRead(Tensor host, Runnable await) {
    this.host = host;
    this.await = await;
  }

  /** Starts copying {@code t} (a small tensor) to the host. */
  public static PendingRead of(Tensor t) {
    Device d = t.device();
    if (!d.isCuda()) return new PendingRead(t.detach().toFloat().copy().retain(), () -> {});
    Tensor host = Torch.empty(DType.F32, Device.CPU, t.shape()).pinMemory().retain();
    host.raw().copy_(t.detach().toFloat().raw(), true);
    return new PendingRead(host, OnCuda.recordEvent(d.index()));
  }

  /** The numbers, waiting for the copy if it is still under way; frees the host copy. */
  public float[] values() {
    await.run();
    float[] v = host.toFloatArray();
    host.release();
    return v;
  }

  /** CUDA classes, loaded only where CUDA is used. */
  private static final class OnCuda {
    record Event(org.bytedeco.pytorch.cuda.CUDAEvent event) implements Runnable {
      @Override
      public void run() {
        event.synchronize();
        event.close();
      }
    }

    static Runnable recordEvent(int device) {
      var e = new org.bytedeco.pytorch.cuda.CUDAEvent();
      e.record(org.bytedeco.pytorch.global.torch_cuda.getCurrentCUDAStream((byte) device));
      return new Event(e);
    }
  }
}
