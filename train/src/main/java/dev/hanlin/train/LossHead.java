package dev.hanlin.train;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.ArrayList;
import java.util.List;

/**
 * The top of the training graph: final norm, lm_head and the cross-entropy summed over a
 * micro-batch's labelled {@code targets} (N = B·T, −100 not trained), in float32. With {@code
 * chunkRows} 0 the whole (N, V) logits are made at once and the caller backpropagates the sum
 * ({@link #sumOf}). Otherwise ({@code loss_chunk_tokens}) {@link #backward} makes the logits of
 * {@code chunkRows} rows at a time and backpropagates each chunk at once, so that at most one
 * chunk's logits (and their float32 copy and gradients) exist: at seq 2048 × 8 rows × V 32000 the
 * whole fp32 logits alone are 2 GiB. Legend: N = rows (tokens), C = hidden size, V = vocabulary.
 */
public record LossHead(Tensor targets, long chunkRows) {
  public LossHead {
    if (chunkRows < 0) throw new IllegalArgumentException("chunkRows must be >= 0: " + chunkRows);
  }

  public boolean chunked() {
    return chunkRows > 0;
  }

  /** The summed loss of whole logits (B, T, V) or (N, V), with its graph: the unchunked path. */
  public Tensor sumOf(Tensor logits) {
    return Torch.crossEntropySum(logits.reshape(-1, logits.size(-1)).toFloat(), targets);
  }

  /**
   * Forward and backward of {@code sum / divisor} from the last block's output {@code x} (B, T, C),
   * chunk by chunk: each chunk's gradients go to a detached copy of its rows and of the lm_head
   * weight; then one backward pass takes the rows' gradient through the final norm into {@code x}'s
   * graph and adds the weight's gradient to lm_head, so each weight receives one gradient per
   * micro-batch, as with the whole logits. Returns the loss sum (detached, float32). Call it in the
   * step's scope and precision (autocast), as the unchunked backward.
   */
  public Tensor backward(LlamaModel model, Tensor x, double divisor) {
    Tensor normed = model.finalNorm(x); // (B, T, C), its graph kept for the last backward
    long c = normed.size(-1), n = normed.numel() / c;
    Tensor rows = normed.detach().reshape(n, c); // (N, C)
    Tensor weight = model.lmHeadWeight(); // (V, C)
    boolean trainHead = weight.requiresGrad();
    Tensor w = weight.detach().requiresGrad(trainHead); // chunks accumulate here, not in lm_head
    // A bf16 lm_head would round its gradient at every chunk's addition: sum in float32 instead.
    boolean wide = weight.dtype() == DType.F32;
    Tensor wGrad = trainHead && !wide ? Torch.zeros(DType.F32, w.device(), w.shape()) : null;
    boolean trainRows = normed.requiresGrad();
    Tensor rowsGrad = trainRows ? Torch.empty(rows.dtype(), rows.device(), n, c) : null;
    List<Tensor> sums = new ArrayList<>();
    for (long start = 0; start < n; start += chunkRows) {
      long len = Math.min(chunkRows, n - start);
      try (Scope s = Scope.open()) {
        Tensor h = rows.narrow(0, start, len).detach().requiresGrad(trainRows); // (n, C)
        Tensor logits = Torch.linear(h, w, null); // (n, V)
        Tensor sum = Torch.crossEntropySum(logits.toFloat(), targets.narrow(0, start, len));
        if (trainRows || trainHead) sum.div(divisor).backward();
        sums.add(s.keep(sum.detach()));
        if (trainRows) rowsGrad.narrow(0, start, len).copy_(h.grad());
        if (wGrad != null) {
          wGrad.copy_(wGrad.add(w.grad().toFloat()));
          w.clearGrad();
        }
      }
    }
    List<Tensor> roots = new ArrayList<>(), grads = new ArrayList<>();
    if (trainRows) {
      roots.add(normed);
      grads.add(rowsGrad.view(normed.shape()));
    }
    if (trainHead) {
      roots.add(weight);
      grads.add(wGrad != null ? wGrad.to(weight.dtype()) : w.grad());
    }
    if (!roots.isEmpty()) Torch.backward(roots, grads);
    return Torch.stack(sums, 0).sum();
  }

  /**
   * Forward only, for evaluation: the logits (n, V) and targets (n) of each chunk of rows of the
   * last block's output {@code x} (B, T, C), handed to {@code each} inside a scope of its own.
   */
  public void forEachChunk(LlamaModel model, Tensor x, ChunkConsumer each) {
    Tensor normed = model.finalNorm(x);
    long c = normed.size(-1), n = normed.numel() / c;
    Tensor rows = normed.reshape(n, c);
    long step = chunked() ? chunkRows : n;
    for (long start = 0; start < n; start += step) {
      long len = Math.min(step, n - start);
      try (Scope s = Scope.open()) {
        Tensor logits = Torch.linear(rows.narrow(0, start, len), model.lmHeadWeight(), null);
        each.accept(logits, targets.narrow(0, start, len));
      }
    }
  }

  /** What {@link #forEachChunk} hands each chunk to. */
  @FunctionalInterface
  public interface ChunkConsumer {
    void accept(Tensor logits, Tensor targets);
  }
}
