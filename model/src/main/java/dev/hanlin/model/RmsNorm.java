package dev.hanlin.model;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/** Llama's RMSNorm as HF computes it: normalize in float32, cast back, then scale. */
public record RmsNorm(Tensor weight, double eps) {
  public Tensor forward(Tensor x) {
    Tensor normed = Torch.rmsNorm(x.toFloat(), eps).to(x.dtype());
    return weight.mul(normed);
  }
}
