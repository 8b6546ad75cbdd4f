package dev.hanlin.model;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/**
 * Grouped-query self-attention with rotary positions. Legend: B = batch, T = tokens, H = query
 * heads, KV = key/value heads, D = head dim, C = hidden size.
 */
record Attention(
    LlamaConfig c,
    Tensor wq,
    Tensor bq,
    Tensor wk,
    Tensor bk,
    Tensor wv,
    Tensor bv,
    Tensor wo,
    Tensor bo,
    java.util.Map<String, LoraLinear> lora) {

  Tensor forward(Tensor x, Tensor cos, Tensor sin, KvCache cache, int layer) {
    return forward(x, cos, sin, cache, layer, null);
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
    int h = c.numAttentionHeads(), kv = c.numKeyValueHeads(), d = c.headDim();
    Tensor q = LoraLinear.linear(x, wq, bq, lora.get("q_proj")).view(b, t, h, d).transpose(1, 2);
    Tensor k = LoraLinear.linear(x, wk, bk, lora.get("k_proj")).view(b, t, kv, d).transpose(1, 2);
    Tensor v = LoraLinear.linear(x, wv, bv, lora.get("v_proj")).view(b, t, kv, d).transpose(1, 2);
    q = Rotary.apply(q, cos, sin); // (B, H, T, D)
    k = Rotary.apply(k, cos, sin); // (B, KV, T, D)
    Tensor[] kvAll = cache.writeAndRead(layer, step, k, v); // (B, KV, L, D)
    Tensor y = Torch.scaledDotProductAttention(q, kvAll[0], kvAll[1], mask); // (B, H, T, D)
    y = y.transpose(1, 2).reshape(b, t, (long) h * d); // (B, T, H*D)
    return LoraLinear.linear(y, wo, bo, lora.get("o_proj")); // (B, T, C)
  }

  /** {@code mask}: null for causal attention, else bool (B, 1, T, T), true where allowed. */
  Tensor forward(Tensor x, Tensor cos, Tensor sin, KvCache cache, int layer, Tensor mask) {
    long b = x.size(0), t = x.size(1);
    int h = c.numAttentionHeads(), kv = c.numKeyValueHeads(), d = c.headDim();
    Tensor q =
        LoraLinear.linear(x, wq, bq, lora.get("q_proj"))
            .view(b, t, h, d)
            .transpose(1, 2); // (B, H, T, D)
    Tensor k =
        LoraLinear.linear(x, wk, bk, lora.get("k_proj"))
            .view(b, t, kv, d)
            .transpose(1, 2); // (B, KV, T, D)
    Tensor v =
        LoraLinear.linear(x, wv, bv, lora.get("v_proj"))
            .view(b, t, kv, d)
            .transpose(1, 2); // (B, KV, T, D)
    q = Rotary.apply(q, cos, sin);
    k = Rotary.apply(k, cos, sin);
    boolean hasPast = cache != null && cache.length() > 0;
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
    y = y.transpose(1, 2).reshape(b, t, (long) h * d); // (B, T, H*D)
    return LoraLinear.linear(y, wo, bo, lora.get("o_proj")); // (B, T, C)
  }
}
