package dev.hanlin.model;

import dev.hanlin.torch.Tensor;

/** One decoder layer: pre-norm attention and pre-norm MLP, each with a residual. */
record TransformerBlock(
    int index, RmsNorm inputNorm, Attention attention, RmsNorm postAttentionNorm, FeedForward mlp) {
  Tensor forward(Tensor x, Tensor cos, Tensor sin, KvCache cache) {
    x = x.add(attention.forward(inputNorm.forward(x), cos, sin, cache, index));
    return x.add(mlp.forward(postAttentionNorm.forward(x)));
  }
}
