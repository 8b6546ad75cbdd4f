package dev.hanlin.model;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/** The SwiGLU MLP: {@code down(silu(gate(x)) * up(x))}. Legend: I = intermediate size. */
public record FeedForward(Linear gate, Linear up, Linear down) {
  public Tensor forward(Tensor x) {
    Tensor g = Torch.silu(gate.forward(x)); // (B, T, I)
    return down.forward(g.mul(up.forward(x))); // (B, T, C)
  }
}
