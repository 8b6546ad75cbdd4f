package dev.hanlin.model;

import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/**
 * One linear layer of a block, {@code y = x Wᵀ + b}, with its LoRA update beside it when the model
 * has adapters ({@code lora} null otherwise, as {@code bias} is null for Llama's bias-free layers).
 */
public record Linear(BaseWeight weight, Tensor bias, LoraLinear lora) {

  /** A layer over a plain weight tensor. */
  public static Linear of(Tensor weight, Tensor bias, LoraLinear lora) {
    return new Linear(new BaseWeight.Dense(weight), bias, lora);
  }

  /** {@code x} (..., in) to (..., out). */
  public Tensor forward(Tensor x) {
    Tensor y =
        switch (weight) {
          case BaseWeight.Dense d -> Torch.linear(x, d.tensor(), bias);
          case BaseWeight.Quantized q -> {
            // The dequantized weight lives only for this product: the scope frees our handle (and
            // the dequantization's temporaries) at once. While autograd records, the graph keeps
            // the one copy the input's gradient needs until backward; without gradient
            // checkpointing that is every layer's, which is why load_in_bits turns it on.
            try (Scope s = Scope.open()) {
              yield s.keep(Torch.linear(x, q.codes().dequantize(q.dtype()), bias));
            }
          }
        };
    return lora == null ? y : y.add(lora.delta(x));
  }
}
