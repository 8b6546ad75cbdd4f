package dev.hanlin.data.sft;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.DataException;
import dev.hanlin.data.Permutation;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Which samples make each batch: every epoch a permutation seeded by (seed, epoch); with {@code
 * groupByLength}, HF's length-grouped order (the permutation cut into mega-batches of 50 batches,
 * each sorted longest first), so a batch wastes little padding. A {@link Cursor} (epoch, samples
 * consumed) is the whole state, so a resumed run sees exactly the batches that would have come
 * next. An epoch's last partial batch is dropped.
 */
public final class SftSampler {
  static final int MEGA_BATCHES = 50;
  private final int[] lengths;
  private final int batchSize;
  private final long seed;
  private final boolean shuffle;
  private final boolean groupByLength;
  private long orderEpoch = -1;
  private int[] order;

  public SftSampler(int[] lengths, int batchSize, long seed, boolean shuffle, boolean group) {
    if (lengths.length < batchSize)
      throw new DataException(
          lengths.length + " SFT samples are fewer than one batch of " + batchSize);
    this.lengths = lengths.clone();
    this.batchSize = batchSize;
    this.seed = seed;
    this.shuffle = shuffle;
    this.groupByLength = group;
  }

  public long stepsPerEpoch() {
    return lengths.length / batchSize;
  }

  /** The cursor where the batch at {@code c} starts (the next epoch's start past its end). */
  public Cursor normalize(Cursor c) {
    return c.position() + batchSize > (long) lengths.length ? new Cursor(c.epoch() + 1, 0) : c;
  }

  /** The sample indices of the batch at {@code c} (normalized). */
  public int[] batch(Cursor c) {
    c = normalize(c);
    int[] o = order(c.epoch());
    return Arrays.copyOfRange(o, (int) c.position(), (int) c.position() + batchSize);
  }

  public Cursor advance(Cursor c) {
    c = normalize(c);
    return normalize(new Cursor(c.epoch(), c.position() + batchSize));
  }

  /** The epoch's order of sample indices. */
  synchronized int[] order(long epoch) {
    if (epoch == orderEpoch) return order;
    int n = lengths.length;
    int[] o = new int[n];
    if (shuffle) {
      Permutation p = new Permutation(n, Permutation.mix(seed * 31 + epoch));
      for (int i = 0; i < n; i++) o[i] = (int) p.apply(i);
    } else for (int i = 0; i < n; i++) o[i] = i;
    if (groupByLength) {
      int mega = batchSize * MEGA_BATCHES;
      for (int s = 0; s < n; s += mega) {
        List<Integer> part = new ArrayList<>();
        for (int i = s; i < Math.min(n, s + mega); i++) part.add(o[i]);
        part.sort(Comparator.comparingInt((Integer i) -> -lengths[i]));
        for (int i = 0; i < part.size(); i++) o[s + i] = part.get(i);
      }
    }
    orderEpoch = epoch;
    order = o;
    return o;
  }
}
