package dev.hanlin.model;

import dev.hanlin.torch.Tensor;

/** One decoder layer: pre-norm attention and pre-norm MLP, each with a residual. */
public record TransformerBlock(
    int index, RmsNorm inputNorm, Attention attention, RmsNorm postAttentionNorm, FeedForward mlp) {

  /** The block over {@code x} (B, T, C) at the rotary angles and mask of {@code p}. */
  public Tensor forward(Tensor x, LlamaModel.Positions p, KvCache cache) {
    return forward(x, p.cos(), p.sin(), cache, p.mask());
  }

  /** With {@code mask} (bool, (B, 1, T, T)) in place of the causal mask (null), for packed rows. */
  public Tensor forward(Tensor x, Tensor cos, Tensor sin, KvCache cache, Tensor mask) {
    x = x.add(attention.forward(inputNorm.forward(x), cos, sin, cache, index, mask));
    return x.add(mlp.forward(postAttentionNorm.forward(x)));
  }

  /** For rows in {@link SlotKvCache} slots; see {@link Attention#forwardSlots}. */
  Tensor forwardSlots(
      Tensor x, Tensor cos, Tensor sin, SlotKvCache cache, SlotKvCache.Step step, Tensor mask) {
    x = x.add(attention.forwardSlots(inputNorm.forward(x), cos, sin, cache, step, index, mask));
    return x.add(mlp.forward(postAttentionNorm.forward(x)));
  }
}
