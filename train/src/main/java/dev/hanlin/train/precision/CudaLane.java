package dev.hanlin.train.precision;

import org.bytedeco.pytorch.cuda.CUDAEvent;
import org.bytedeco.pytorch.cuda.CUDAStream;
import org.bytedeco.pytorch.global.torch_cuda;

/**
 * Offload's copies on a side CUDA stream of the model's device, ordered against the compute stream
 * by events: the copy engines move gradients to the host and updated weights back while the compute
 * stream runs the forward.
 */
final class CudaLane implements OffloadPipeline.Lane {
  private final byte device;
  private final CUDAStream side;

  CudaLane(int device) {
    this.device = (byte) device;
    this.side = torch_cuda.getStreamFromPool(false, this.device);
    side.retainReference(); // lives as long as the run
  }

  private CUDAStream current() {
    return torch_cuda.getCurrentCUDAStream(device);
  }

  private static CUDAEvent recordOn(CUDAStream s) {
    CUDAEvent e = new CUDAEvent(); // timing disabled: cheaper
    e.retainReference(); // outlives the scope it is made in
    e.record(s);
    return e;
  }

  @Override
  public void followCompute() {
    CUDAEvent e = recordOn(current());
    e.block(side);
    e.releaseReference();
  }

  @Override
  public void useSide() {
    torch_cuda.setCurrentCUDAStream(side); // the background thread's, for good
  }

  @Override
  public void onSide(Runnable r) {
    CUDAStream was = current();
    torch_cuda.setCurrentCUDAStream(side);
    try {
      r.run();
    } finally {
      torch_cuda.setCurrentCUDAStream(was);
    }
  }

  @Override
  public Object mark() {
    return recordOn(side);
  }

  @Override
  public void hostWait(Object mark) {
    ((CUDAEvent) mark).synchronize();
  }

  @Override
  public void streamWait(Object mark) {
    ((CUDAEvent) mark).block(current());
  }

  @Override
  public void release(Object mark) {
    if (mark != null) ((CUDAEvent) mark).releaseReference();
  }
}
