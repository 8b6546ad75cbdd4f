package dev.hanlin.model;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/** The SwiGLU MLP: {@code down(silu(gate(x)) * up(x))}. */
record FeedForward(
    Tensor gate, Tensor gateBias, Tensor up, Tensor upBias, Tensor down, Tensor downBias) {
  Tensor forward(Tensor x) {
    Tensor g = Torch.silu(Torch.linear(x, gate, gateBias)); // (B, T, I)
    return Torch.linear(g.mul(Torch.linear(x, up, upBias)), down, downBias); // (B, T, C)
  }
}
