package dev.hanlin.train.task;

import dev.hanlin.data.LabelledBatch;
import dev.hanlin.data.loader.Batch;
import dev.hanlin.data.loader.DataLoader;

/** Pretraining's packed blocks as labelled micro-batches: every target is trained. */
final class PackedSource implements LabelledBatch.Source {
  private final DataLoader loader;

  PackedSource(DataLoader loader) {
    this.loader = loader;
  }

  @Override
  public LabelledBatch next() {
    Batch b = loader.next();
    var targets = b.targets();
    return new LabelledBatch(b.inputs(), targets, targets.numel(), b.cursor(), b);
  }

  @Override
  public long stepsPerEpoch() {
    return loader.stepsPerEpoch();
  }

  @Override
  public void close() {
    loader.close();
  }
}
