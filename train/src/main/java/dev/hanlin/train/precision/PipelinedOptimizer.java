package dev.hanlin.train.precision;

import dev.hanlin.torch.Tensor;
import dev.hanlin.train.optim.AdamW;
import dev.hanlin.train.optim.Optimizer;
import java.util.Map;

/**
 * The trainer's view of offload's pipelined AdamW: {@link #step} computes the clip scale on the
 * device (as the unpipelined step does) and returns once the update is queued; zeroing the
 * gradients waits (on the device) for their copies to the host; the state is read or loaded only
 * once the update has finished.
 */
final class PipelinedOptimizer implements Optimizer {
  private final AdamW adamW;
  private final double maxGradNorm;
  private final PipelinedUpdate update;

  PipelinedOptimizer(AdamW adamW, double maxGradNorm, PipelinedUpdate update) {
    this.adamW = adamW;
    this.maxGradNorm = maxGradNorm;
    this.update = update;
  }

  @Override
  public void zeroGrad() {
    update.pipeline().awaitGradsCopied();
    adamW.zeroGrad();
  }

  @Override
  public Tensor gradNorm() {
    return adamW.gradNorm();
  }

  @Override
  public void step(double lr, Tensor norm, Tensor foundInf) {
    update.launch(adamW, lr, AdamW.clipScale(norm, maxGradNorm), foundInf);
  }

  @Override
  public Map<String, Tensor> state() {
    update.drain();
    return adamW.state();
  }

  @Override
  public void loadState(Map<String, Tensor> saved) {
    update.drain();
    adamW.loadState(saved);
  }
}
