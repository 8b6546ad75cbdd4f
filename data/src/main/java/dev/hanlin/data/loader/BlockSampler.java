package dev.hanlin.data.loader;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.DataException;
import dev.hanlin.data.Permutation;

/**
 * Which blocks each rank reads. The dataset is one token stream cut into {@code W = (N - 1) / T}
 * windows of {@code T + 1} tokens (neighbours share one token, so every token is a target once; the
 * remainder is dropped once, at the end of the dataset). Each epoch visits the windows in an order
 * that depends only on (seed, epoch); step after step, the next {@code batch × world} windows of
 * that order form the global batch, and rank r takes its r-th slice of {@code batch}. So the order
 * is the same for any number of ranks, the ranks' shares are disjoint, and the last partial global
 * batch of an epoch is dropped so every rank runs the same number of steps.
 */
public final class BlockSampler {
  private final long windows;
  private final int batchSize;
  private final int rank;
  private final int world;
  private final long seed;
  private final boolean shuffle;
  private final long stepsPerEpoch;
  private Permutation perm;
  private long permEpoch = -1;

  public BlockSampler(
      long windows, int batchSize, int rank, int world, long seed, boolean shuffle) {
    if (batchSize < 1 || world < 1 || rank < 0 || rank >= world) {
      throw new IllegalArgumentException(
          "batch " + batchSize + ", rank " + rank + " of world " + world);
    }
    this.windows = windows;
    this.batchSize = batchSize;
    this.rank = rank;
    this.world = world;
    this.seed = seed;
    this.shuffle = shuffle;
    this.stepsPerEpoch = windows / ((long) batchSize * world);
    if (stepsPerEpoch == 0) {
      throw new DataException(
          "the split has "
              + windows
              + " blocks, fewer than one global batch of "
              + batchSize
              + " x "
              + world
              + " ranks");
    }
  }

  public long windows() {
    return windows;
  }

  public long stepsPerEpoch() {
    return stepsPerEpoch;
  }

  /** Blocks per step over all ranks. */
  public long globalBatch() {
    return (long) batchSize * world;
  }

  /** Moves a cursor past the end of its epoch to the start of the next. */
  public Cursor normalize(Cursor c) {
    return c.position() + globalBatch() > stepsPerEpoch * globalBatch()
        ? new Cursor(c.epoch() + 1, 0)
        : c;
  }

  /** This rank's window indices for the step at {@code c}. */
  public long[] windows(Cursor c) {
    c = normalize(c);
    long[] out = new long[batchSize];
    long first = c.position() + (long) rank * batchSize;
    for (int j = 0; j < batchSize; j++) out[j] = order(c.epoch(), first + j);
    return out;
  }

  /** The cursor after the step at {@code c}. */
  public Cursor advance(Cursor c) {
    c = normalize(c);
    return normalize(new Cursor(c.epoch(), c.position() + globalBatch()));
  }

  /** The window at {@code position} of epoch {@code epoch}'s order. */
  public synchronized long order(long epoch, long position) {
    if (!shuffle) return position;
    if (permEpoch != epoch) {
      perm = new Permutation(windows, Permutation.mix(seed * 0x9E3779B97F4A7C15L + epoch));
      permEpoch = epoch;
    }
    return perm.apply(position);
  }
}
