package dev.hanlin.train.explicit;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.fused.BlockOps;
import dev.hanlin.torch.fused.Grads;
import org.bytedeco.pytorch.global.torch;

/**
 * The final norm, the head and the loss, forward and backward together, chunk by chunk of rows: the
 * logits of at most {@code chunkRows} rows exist at a time (never the B×T×V tensor), each chunk's
 * loss and logit gradient from one {@link BlockOps#crossEntropy} call. Legend: N = rows, C =
 * hidden, V = vocabulary, R = rows of a chunk.
 */
final class HeadPass {
  private HeadPass() {}

  /** The summed loss (0-dim float32) and the last block output's gradient (B, T, C). */
  record Result(Tensor lossSum, Tensor dx) {}

  /** Logits of at most 256 MiB in float32 per chunk. */
  static int defaultChunkRows(long vocab) {
    return (int) Math.max(1, Math.min(Integer.MAX_VALUE, (256L << 20) / (4 * vocab)));
  }

  /**
   * The loss of {@code x} (B, T, C) against {@code labels} (N; -100 ignored), its gradients scaled
   * by {@code scale}: the final norm's and the head's added to their {@code .grad}.
   */
  static Result run(
      LlamaModel model,
      Tensor x,
      Tensor labels,
      double scale,
      BlockOps ops,
      DType cd,
      int chunkRows) {
    long n = x.size(0) * x.size(1), c = x.size(2);
    Tensor normW = model.weights().get("model.norm.weight");
    Tensor head =
        model.config().tieWordEmbeddings()
            ? model.weights().get("model.embed_tokens.weight")
            : model.weights().get("lm_head.weight");
    Tensor x2 = x.reshape(n, c);
    BlockOps.Normed norm = ops.rmsNorm(x2, normW, model.config().rmsNormEps());
    Tensor a = norm.y().to(cd); // (N, C)
    Tensor w = head.to(cd); // (V, C)
    Tensor loss = null, dw = null;
    // each chunk's input gradient is written into its rows by the GEMM itself (no cat after)
    Tensor da = Torch.empty(cd, x.device(), n, c);
    for (long r0 = 0; r0 < n; r0 += chunkRows) {
      long r = Math.min(chunkRows, n - r0);
      try (Scope s = Scope.open()) {
        Tensor ar = a.narrow(0, r0, r);
        Tensor logits = Torch.linear(ar, w, null); // (R, V) — timing point: head GEMM
        BlockOps.LossAndGrad lg = ops.crossEntropy(logits, labels.narrow(0, r0, r), scale);
        loss = s.keep(loss == null ? lg.lossSum() : loss.add(lg.lossSum())); // timing: loss
        // (R, C); mm_out returns a reference to its out, no object of its own
        torch.mm_out(da.narrow(0, r0, r).raw(), lg.dlogits().raw(), w.raw());
        if (head.requiresGrad()) {
          Tensor part = lg.dlogits().transpose(0, 1).matmul(ar); // (V, C) in cd
          // float32 sum, added in place: no float32 copy of each part, no new sum per chunk
          if (dw == null) dw = s.keep(part.toFloat());
          else dw.raw().add_(part.raw());
        }
      }
    }
    if (dw != null) Grads.accumulate(head, dw, true); // (V, C) float32, ours alone
    Tensor dnorm = da.to(x.dtype());
    BlockOps.NormGrads g = ops.rmsNormBackward(dnorm, x2, normW, norm.rstd());
    BlockPass.addGrad(normW, g.dweight());
    return new Result(loss, g.dx().view(x.size(0), x.size(1), c));
  }
}
