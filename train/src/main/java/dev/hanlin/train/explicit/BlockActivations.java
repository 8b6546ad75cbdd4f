package dev.hanlin.train.explicit;

import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.fused.Sdpa;
import java.util.ArrayList;
import java.util.List;

/**
 * What one block's forward keeps for its backward, and its output. The MLP's {@code silu(gate)·up}
 * is not kept (recomputed in backward: one elementwise op against N×I of memory). Legend: B =
 * batch, T = tokens, N = B·T rows, C = hidden, H/KV = query/key-value heads, D = head dim, I =
 * intermediate size, cd = the compute dtype.
 *
 * @param x the block input (N, C)
 * @param rstd1 the input norm's 1/rms (N)
 * @param a the input norm's output in cd (N, C), q/k/v's input
 * @param loraQkv q/k/v adapters' saved tensors ({@link Projection.Saved})
 * @param q rotated queries (B, H, T, D) in cd
 * @param k rotated keys (B, KV, T, D) in cd
 * @param v values (B, KV, T, D)
 * @param attn the attention output and its log-sum-exp
 * @param y the attention output as o_proj's input (N, H·D)
 * @param loraO o_proj's adapter input
 * @param h the residual after attention (N, C)
 * @param rstd2 the post-attention norm's 1/rms (N)
 * @param b the post-attention norm's output in cd (N, C)
 * @param loraGu gate/up adapters' inputs
 * @param gate gate_proj's output (N, I)
 * @param up up_proj's output (N, I)
 * @param loraDown down_proj's adapter input
 * @param out the block's output (B, T, C)
 */
record BlockActivations(
    Tensor x,
    Tensor rstd1,
    Tensor a,
    Projection.Saved loraQkv,
    Tensor q,
    Tensor k,
    Tensor v,
    Sdpa.Saved attn,
    Tensor y,
    Projection.Saved loraO,
    Tensor h,
    Tensor rstd2,
    Tensor b,
    Projection.Saved loraGu,
    Tensor gate,
    Tensor up,
    Projection.Saved loraDown,
    Tensor out) {

  /** Moves every tensor out of {@code s} (the block's forward scope) into the enclosing one. */
  BlockActivations keptBy(Scope s) {
    List<Tensor> all =
        new ArrayList<>(List.of(x, rstd1, a, q, k, v, attn.out(), attn.lse(), y, h, rstd2, b));
    all.addAll(List.of(gate, up, out));
    all.addAll(List.of(attn.extra()));
    for (Projection.Saved l : List.of(loraQkv, loraO, loraGu, loraDown)) all.addAll(l.tensors());
    for (Tensor t : all) s.keep(t);
    return this;
  }
}
