package dev.hanlin.train;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.loader.Batch;
import dev.hanlin.data.loader.DataLoader;
import dev.hanlin.data.loader.LoaderOptions;
import dev.hanlin.data.shard.TokenDataset;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Autocast;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.train.metrics.EvalMetrics;

/**
 * Loss, perplexity and token accuracy over a dataset's blocks in order: the loss is summed over the
 * labelled positions and divided by their count; accuracy is the share of labelled positions whose
 * argmax equals the label (positions labelled −100 count for neither).
 */
public final class Evaluator {
  private Evaluator() {}

  /** Accumulates sums over batches. */
  public static final class Sums {
    double loss;
    long tokens;
    long correct;

    /** Adds one batch: logits (B, T, V), targets (B, T). */
    public void add(Tensor logits, Tensor targets) {
      long v = logits.size(-1);
      Tensor flat = logits.reshape(-1, v).toFloat(); // (N, V)
      Tensor t = targets.reshape(-1); // (N)
      Tensor mask = t.ne(Torch.IGNORE_INDEX);
      loss += Torch.crossEntropySum(flat, t).item();
      tokens += (long) mask.sum().item();
      correct += (long) flat.argmax(-1).eq(t).and(mask).sum().item();
    }

    public EvalMetrics metrics(long step) {
      double mean = tokens == 0 ? Double.NaN : loss / tokens;
      return EvalMetrics.of(
          step, mean, tokens == 0 ? Double.NaN : (double) correct / tokens, tokens);
    }
  }

  /**
   * Evaluates collated SFT batches (up to {@code maxBatches}, 0: all): loss, perplexity and
   * accuracy over the response tokens only, the logits made {@code chunkRows} rows at a time
   * ({@code loss_chunk_tokens}; 0: all at once).
   */
  public static EvalMetrics evaluate(
      LlamaModel model,
      java.util.List<dev.hanlin.data.sft.SftCollator.Arrays> batches,
      long maxBatches,
      Device device,
      boolean bf16,
      long step,
      long chunkRows) {
    Sums sums = new Sums();
    long n = maxBatches > 0 ? Math.min(maxBatches, batches.size()) : batches.size();
    try (Grad.Guard g = Grad.inference()) {
      for (int i = 0; i < n; i++) {
        try (Scope s = Scope.open();
            dev.hanlin.data.LabelledBatch b =
                dev.hanlin.data.sft.SftLoader.toDevice(batches.get(i), device, Cursor.START)) {
          add(sums, model, b.inputs(), b.targets(), device, bf16, chunkRows);
        }
      }
    }
    return sums.metrics(step);
  }

  /**
   * Evaluates up to {@code maxBatches} batches (0: all) of {@code data}, the logits made {@code
   * chunkRows} rows at a time ({@code loss_chunk_tokens}; 0: all at once).
   */
  public static EvalMetrics evaluate(
      LlamaModel model,
      TokenDataset data,
      int blockSize,
      int batchSize,
      long maxBatches,
      Device device,
      boolean bf16,
      long step,
      long chunkRows) {
    Sums sums = new Sums();
    LoaderOptions o =
        LoaderOptions.of(blockSize, batchSize, 0).withShuffle(false).withDevice(device);
    try (DataLoader loader = new DataLoader(data, o, Cursor.START);
        Grad.Guard g = Grad.inference()) {
      long n = loader.stepsPerEpoch();
      if (maxBatches > 0) n = Math.min(n, maxBatches);
      for (long i = 0; i < n; i++) {
        try (Scope s = Scope.open();
            Batch b = loader.next()) {
          add(sums, model, b.inputs(), b.targets(), device, bf16, chunkRows);
        }
      }
    }
    return sums.metrics(step);
  }

  /** One batch's sums: of its whole logits, or of chunks of {@code chunkRows} rows. */
  private static void add(
      Sums sums,
      LlamaModel model,
      Tensor ids,
      Tensor targets,
      Device device,
      boolean bf16,
      long chunkRows) {
    if (chunkRows == 0) {
      Tensor logits;
      if (bf16) {
        try (Grad.Guard ac = Autocast.enable(device, DType.BF16)) {
          logits = model.forward(ids, null);
        }
      } else logits = model.forward(ids, null);
      sums.add(logits, targets);
      return;
    }
    try (Grad.Guard ac = bf16 ? Autocast.enable(device, DType.BF16) : () -> {}) {
      new LossHead(targets.reshape(-1), chunkRows)
          .forEachChunk(model, model.hidden(ids, null, null), sums::add);
    }
  }
}
