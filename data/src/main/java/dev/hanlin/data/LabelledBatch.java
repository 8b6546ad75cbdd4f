package dev.hanlin.data;

import dev.hanlin.torch.Tensor;

/**
 * One micro-batch as the trainer consumes it: inputs (B, T) and next-token targets (B, T), −100
 * where nothing is trained; {@code trained} counts the other targets (known on the host, so the
 * loss can be normalized over an accumulation window without a device sync); {@code cursor} is
 * where the data stands after this batch. The caller closes it.
 */
public record LabelledBatch(
    Tensor inputs,
    Tensor targets,
    long trained,
    Cursor cursor,
    AutoCloseable owner,
    Tensor positions,
    Tensor segments)
    implements AutoCloseable {

  public LabelledBatch(
      Tensor inputs, Tensor targets, long trained, Cursor cursor, AutoCloseable owner) {
    this(inputs, targets, trained, cursor, owner, null, null);
  }

  /** Whether rows pack several samples: then {@code positions} and {@code segments} (B, T). */
  public boolean packed() {
    return positions != null;
  }

  @Override
  public void close() {
    inputs.close();
    targets.close();
    if (positions != null) positions.close();
    if (segments != null) segments.close();
    if (owner != null) {
      try {
        owner.close();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
  }

  /** Where micro-batches come from: packed pretraining blocks or SFT samples. */
  public interface Source extends AutoCloseable {
    /** The next micro-batch, in the order a resumed run reproduces. */
    LabelledBatch next();

    /** Micro-batches in one epoch. */
    long stepsPerEpoch();

    @Override
    void close();
  }
}
