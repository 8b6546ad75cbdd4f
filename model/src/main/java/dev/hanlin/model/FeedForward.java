package dev.hanlin.model;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/** The SwiGLU MLP: {@code down(silu(gate(x)) * up(x))}. */
record FeedForward(
    Tensor gate,
    Tensor gateBias,
    Tensor up,
    Tensor upBias,
    Tensor down,
    Tensor downBias,
    java.util.Map<String, LoraLinear> lora) {
  Tensor forward(Tensor x) {
    Tensor g = Torch.silu(LoraLinear.linear(x, gate, gateBias, lora.get("gate_proj"))); // (B, T, I)
    return LoraLinear.linear(
        g.mul(LoraLinear.linear(x, up, upBias, lora.get("up_proj"))),
        down,
        downBias,
        lora.get("down_proj")); // (B, T, C)
  }
}
