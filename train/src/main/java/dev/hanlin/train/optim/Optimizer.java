package dev.hanlin.train.optim;

import dev.hanlin.torch.Tensor;
import java.util.Map;

/**
 * What the loop asks of an optimizer. Everything stays on the device: the norm and the skip flag
 * are tensors the host never waits for.
 */
public interface Optimizer {
  /** Zeroes the gradient of every trainable weight, also those another rank's optimizer updates. */
  void zeroGrad();

  /** The L2 norm of this rank's trainable gradients (0-dim float32, on their device). */
  Tensor gradNorm();

  /**
   * One update at learning rate {@code lr}, the gradients clipped to the configured norm from
   * {@code norm} (of all ranks' gradients); {@code foundInf} (0-dim float32, 1 or 0) skips it.
   */
  void step(double lr, Tensor norm, Tensor foundInf);

  /** The state a checkpoint saves, by key. */
  Map<String, Tensor> state();

  /** Copies a saved {@link #state()} into this optimizer; every key must be present. */
  void loadState(Map<String, Tensor> saved);
}
