package dev.hanlin.model;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/**
 * A low-rank update beside a frozen linear layer, as PEFT's {@code lora.Linear} computes it: {@code
 * y = x Wᵀ + b + scaling · (dropout(x) Aᵀ) Bᵀ}. Dropout is active only while autograd records
 * (training), never under no-grad or inference.
 */
public record LoraLinear(Tensor a, Tensor b, double scaling, double dropout) {

  /** {@code scaling · B A x} for x (..., in); the result is (..., out). */
  Tensor delta(Tensor x) {
    if (dropout > 0) x = Torch.dropout(x, dropout, Torch.gradEnabled());
    return Torch.linear(Torch.linear(x, a, null), b, null).mul(scaling);
  }

  /** {@code scaling · B A}, the (out, in) matrix the update adds to W, in fp32. */
  Tensor deltaWeight() {
    return b.toFloat().matmul(a.toFloat()).mul(scaling);
  }
}
