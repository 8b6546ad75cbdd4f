package dev.hanlin.model;

import dev.hanlin.model.quant.QuantizedWeight;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Tensor;

/**
 * The weight (out, in) of a {@link Linear}: a tensor as loaded, or a frozen base held in 4 or 8
 * bits under LoRA (QLoRA, {@code load_in_bits}).
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

  /**
   * A quantized frozen weight, dequantized to {@code dtype} (the model's compute dtype) each time a
   * forward uses it. It has no gradient: only the layer's input and its LoRA adapter get one.
   */
  record Quantized(QuantizedWeight codes, DType dtype) implements BaseWeight {
    @Override
    public long[] shape() {
      return codes.shape();
    }
  }
}
