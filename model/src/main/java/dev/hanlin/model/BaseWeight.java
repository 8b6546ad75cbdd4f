package dev.hanlin.model;

import dev.hanlin.torch.Tensor;

/**
 * The frozen or trained weight (out, in) of a {@link Linear}: a tensor as loaded. A quantized base
 * (QLoRA) is the other kind of weight, added beside this one.
 */
public sealed interface BaseWeight {
  /** The weight's shape (out, in). */
  long[] shape();

  /** A plain tensor, used as it is (and trained, unless frozen). */
  record Dense(Tensor tensor) implements BaseWeight {
    @Override
    public long[] shape() {
      return tensor.shape();
    }
  }
}
