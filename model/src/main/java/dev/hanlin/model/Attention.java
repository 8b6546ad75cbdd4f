package dev.hanlin.model;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/**
 * Grouped-query self-attention with rotary positions. Legend: B = batch, T = tokens, H = query
 * heads, KV = key/value heads, D = head dim, C = hidden size, L = cached length.
 */
public record Attention(Linear q, Linear k, Linear v, Linear o, LlamaConfig config) {

  /**
   * {@code cos}/{@code sin} (T, D), or (B, 1, T, D) at each token's own position; {@code mask}:
   * null for causal attention, else bool (B, 1, T, T), true where allowed. With a cache the keys
   * and values are appended to layer {@code layer}'s.
   */
  public Tensor forward(Tensor x, Tensor cos, Tensor sin, KvCache cache, int layer, Tensor mask) {
    long b = x.size(0), t = x.size(1);
    Tensor[] qkv = project(x);
    Tensor q = qkv[0], k = qkv[1], v = qkv[2];
    boolean hasPast = cache != null && cache.length() > 0;
    q = Rotary.apply(q, cos, sin); // (B, H, T, D)
    k = Rotary.apply(k, cos, sin); // (B, KV, T, D)
    if (cache != null) {
      Tensor[] kvAll = cache.append(layer, k, v); // (B, KV, past + T, D)
      k = kvAll[0];
      v = kvAll[1];
    }
    if (hasPast && t > 1)
      throw new UnsupportedOperationException(
          "chunked prefill after cached tokens is not supported");
    Tensor y =
        mask != null
            ? Torch.scaledDotProductAttention(q, k, v, mask)
            : Torch.scaledDotProductAttention(q, k, v, t > 1); // (B, H, T, D)
    return output(y, b, t);
  }

  /**
   * Attention for rows that each continue their own sequence in a {@link SlotKvCache} slot: {@code
   * cos}/{@code sin} (B, 1, T, D) at each token's own position, {@code mask} bool (B, 1, T, L).
   */
  Tensor forwardSlots(
      Tensor x,
      Tensor cos,
      Tensor sin,
      SlotKvCache cache,
      SlotKvCache.Step step,
      int layer,
      Tensor mask) {
    long b = x.size(0), t = x.size(1);
    Tensor[] qkv = project(x);
    Tensor q = Rotary.apply(qkv[0], cos, sin); // (B, H, T, D)
    Tensor k = Rotary.apply(qkv[1], cos, sin); // (B, KV, T, D)
    Tensor[] kvAll = cache.writeAndRead(layer, step, k, qkv[2]); // (B, KV, L, D)
    Tensor y = Torch.scaledDotProductAttention(q, kvAll[0], kvAll[1], mask); // (B, H, T, D)
    return output(y, b, t);
  }

  /** Queries (B, H, T, D), keys and values (B, KV, T, D) of {@code x} (B, T, C), not rotated. */
  private Tensor[] project(Tensor x) {
    long b = x.size(0), t = x.size(1);
    int h = config.numAttentionHeads(), kv = config.numKeyValueHeads(), d = config.headDim();
    return new Tensor[] {
      q.forward(x).view(b, t, h, d).transpose(1, 2),
      k.forward(x).view(b, t, kv, d).transpose(1, 2),
      v.forward(x).view(b, t, kv, d).transpose(1, 2)
    };
  }

  /** The heads' outputs (B, H, T, D) joined and projected back to (B, T, C). */
  private Tensor output(Tensor y, long b, long t) {
    y = y.transpose(1, 2).reshape(b, t, (long) config.numAttentionHeads() * config.headDim());
    return o.forward(y); // (B, T, C)
  }
}
