package dev.hanlin.train.explicit;

import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.TransformerBlock;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.fused.BlockOps;
import dev.hanlin.torch.fused.Grads;
import dev.hanlin.torch.fused.Sdpa;

/**
 * One decoder block's forward, keeping its {@link BlockActivations}, and its backward written out:
 * the GEMMs ({@link Projection}), attention ({@link Sdpa}) and the elementwise parts ({@link
 * BlockOps}). GEMMs and attention run in the compute dtype {@code cd} (autocast's, or the model's);
 * the residual stream and the norms in the block input's dtype, as HF's Llama under autocast does.
 * Gradients are added to each weight's {@code .grad}. Each "timing point" comment marks a call a
 * profiler can bracket. Legend as in {@link BlockActivations}.
 */
final class BlockPass {
  /**
   * Where the rows sit: rotary {@code cos}/{@code sin} as {@code LlamaModel.positions} gives them,
   * and the attention bias of packed rows ({@link Sdpa#bias}; null for causal rows).
   */
  record Context(Tensor cos, Tensor sin, Tensor bias) {}

  private final TransformerBlock block;
  private final BlockOps ops;
  private final Projection qkv, o, gateUp, down;
  private final long h, kv, d;
  private final DType cd;

  BlockPass(TransformerBlock block, LlamaConfig c, BlockOps ops, DType cd) {
    this.block = block;
    this.ops = ops;
    var at = block.attention();
    var mlp = block.mlp();
    this.qkv = new Projection(cd, at.q(), at.k(), at.v());
    this.o = new Projection(cd, at.o());
    this.gateUp = new Projection(cd, mlp.gate(), mlp.up());
    this.down = new Projection(cd, mlp.down());
    this.h = c.numAttentionHeads();
    this.kv = c.numKeyValueHeads();
    this.d = c.headDim();
    this.cd = cd;
  }

  /** The block over {@code x} (B, T, C). */
  BlockActivations forward(Tensor x, Context ctx) {
    return forward(x, ctx, false);
  }

  /**
   * As above; with {@code holdWeights} (a recompute, its backward next in the same scope) the fused
   * weights made here are kept for the backward instead of being made again.
   */
  BlockActivations forward(Tensor x, Context ctx, boolean holdWeights) {
    long bs = x.size(0), t = x.size(1), c = x.size(2), n = bs * t;
    Tensor x2 = x.reshape(n, c);
    var in = block.inputNorm();
    BlockOps.Normed n1 = ops.rmsNorm(x2, in.weight(), in.eps()); // timing point: norm
    Tensor a = n1.y().to(cd);
    Projection.Saved lq = qkv.saved(holdWeights);
    Tensor[] p = qkv.forward(a, n1.y(), lq); // (N, H·D), (N, KV·D) ×2
    BlockOps.RotatedQk r =
        ops.ropeQk(heads(p[0], bs, t, h), heads(p[1], bs, t, kv), ctx.cos(), ctx.sin()); // rope
    Tensor q = r.q(), k = r.k();
    Tensor v = heads(p[2], bs, t, kv);
    Sdpa.Saved at = Sdpa.forward(q, k, v, ctx.bias()); // timing point: attention
    Tensor y = at.out().transpose(1, 2).reshape(n, h * d); // (N, H·D)
    Projection.Saved lo = o.saved(holdWeights);
    Tensor attnOut = o.forward(y, y, lo)[0]; // (N, C)
    var post = block.postAttentionNorm();
    BlockOps.AddNormed n2 =
        ops.addRmsNorm(x2, attnOut.to(x.dtype()), post.weight(), post.eps()); // timing: add+norm
    Tensor b = n2.y().to(a.dtype());
    Projection.Saved lg = gateUp.saved(holdWeights);
    Tensor[] gu = gateUp.forward(b, n2.y(), lg); // (N, I) ×2: column slices of the fused product
    Tensor s = ops.swiglu(gu[0], gu[1]); // timing point: swiglu (reads the slices in place)
    Projection.Saved ld = down.saved(holdWeights);
    Tensor mlpOut = down.forward(s, s, ld)[0]; // (N, C)
    Tensor out = n2.h().add(mlpOut.to(x.dtype())).view(bs, t, c);
    return new BlockActivations(
        x2, n1.rstd(), a, lq, q, k, v, at, y, lo, n2.h(), n2.rstd(), b, lg, gu[0], gu[1], ld, out);
  }

  /** The block input's gradient (B, T, C) from its output's {@code dout} (B, T, C). */
  Tensor backward(BlockActivations s, Tensor dout, Context ctx) {
    long bs = dout.size(0), t = dout.size(1), c = dout.size(2), n = bs * t;
    Tensor dh = dout.reshape(n, c);
    // MLP: down, SwiGLU, gate/up, post-attention norm
    Tensor sw = ops.swiglu(s.gate(), s.up()); // recomputed, not kept
    Tensor ds = down.backward(new Tensor[] {dh.to(cd)}, sw, s.loraDown());
    Tensor dgu = ops.swigluBackwardJoined(ds, s.gate(), s.up()); // (N, 2I) — timing: swiglu
    Tensor db = gateUp.backward(dgu, s.b(), s.loraGu());
    var post = block.postAttentionNorm();
    // the residual's gradient dh is added to the norm's dx in the same call (one pass on CUDA)
    BlockOps.NormGrads g2 =
        ops.rmsNormBackward(db.to(s.h().dtype()), s.h(), post.weight(), s.rstd2(), dh);
    addGrad(post.weight(), g2.dweight());
    dh = g2.dx();
    // attention: o_proj, SDPA, RoPE, q/k/v, input norm
    Tensor dy = o.backward(new Tensor[] {dh.to(cd)}, s.y(), s.loraO()); // (N, H·D)
    Tensor dyHeads = dy.view(bs, t, h, d).transpose(1, 2); // (B, H, T, D)
    Tensor[] g = Sdpa.backward(dyHeads, s.q(), s.k(), s.v(), ctx.bias(), s.attn());
    // (N, (H+2KV)·D): the fused q/k/v output's gradient, written as rows — timing point: rope
    Tensor dqkv = ops.ropeQkvBackward(g[0], g[1], g[2], ctx.cos(), ctx.sin());
    Tensor da = qkv.backward(dqkv.to(cd), s.a(), s.loraQkv());
    var in = block.inputNorm();
    BlockOps.NormGrads g1 =
        ops.rmsNormBackward(da.to(s.x().dtype()), s.x(), in.weight(), s.rstd1(), dh);
    addGrad(in.weight(), g1.dweight());
    return g1.dx().view(bs, t, c);
  }

  /** (N, heads·D) rows to (B, heads, T, D). */
  private Tensor heads(Tensor rows, long bs, long t, long heads) {
    return rows.view(bs, t, heads, d).transpose(1, 2);
  }

  /**
   * Adds {@code g} to {@code param}'s gradient if it takes one (copied: a norm's weight gradient
   * may be a fused kernel's buffer).
   */
  static void addGrad(Tensor param, Tensor g) {
    if (param.requiresGrad()) Grads.accumulate(param, g);
  }
}
