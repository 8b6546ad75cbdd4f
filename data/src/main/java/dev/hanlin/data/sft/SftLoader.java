package dev.hanlin.data.sft;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.LabelledBatch;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * SFT micro-batches: {@link SftSampler} chooses the samples, {@link SftCollator} pads them, and the
 * batch goes to the device. Collating a batch takes microseconds, so there is no prefetch thread.
 */
public final class SftLoader implements LabelledBatch.Source {
  private final SftDataset data;
  private final SftSampler sampler;
  private final SftCollator collator;
  private final Device device;
  private final int rank, worldSize;
  private Cursor cursor;

  /** Batches of {@code sampler} (whose batch size covers all ranks), this rank taking its slice. */
  public SftLoader(
      SftDataset data,
      SftSampler sampler,
      SftCollator collator,
      Device device,
      int rank,
      int worldSize,
      Cursor start) {
    this.data = data;
    this.sampler = sampler;
    this.collator = collator;
    this.device = device;
    this.rank = rank;
    this.worldSize = worldSize;
    this.cursor = sampler.normalize(start);
  }

  /**
   * Training order: shuffled by (seed, epoch), optionally grouped by length; each rank's
   * micro-batch of {@code batchSize} samples is its slice of one global batch, so the cursor is the
   * same on all ranks.
   */
  public static SftLoader training(
      SftDataset data,
      int batchSize,
      long seed,
      boolean groupByLength,
      SftCollator collator,
      Device device,
      int rank,
      int worldSize,
      Cursor start) {
    return new SftLoader(
        data,
        new SftSampler(lengths(data), batchSize * worldSize, seed, true, groupByLength),
        collator,
        device,
        rank,
        worldSize,
        start);
  }

  /** Single-process training order. */
  public static SftLoader training(
      SftDataset data,
      int batchSize,
      long seed,
      boolean groupByLength,
      SftCollator collator,
      Device device,
      Cursor start) {
    return training(data, batchSize, seed, groupByLength, collator, device, 0, 1, start);
  }

  /** Evaluation order: the samples as they are, the last partial batch included. */
  public static List<SftCollator.Arrays> inOrder(
      SftDataset data, int batchSize, SftCollator collator) {
    List<SftCollator.Arrays> out = new ArrayList<>();
    for (int s = 0; s < data.size(); s += batchSize)
      out.add(collator.collate(data.examples().subList(s, Math.min(data.size(), s + batchSize))));
    return out;
  }

  static int[] lengths(SftDataset d) {
    int[] l = new int[d.size()];
    for (int i = 0; i < l.length; i++) l[i] = d.get(i).length();
    return l;
  }

  public Cursor cursor() {
    return cursor;
  }

  @Override
  public long stepsPerEpoch() {
    return sampler.stepsPerEpoch();
  }

  /** This rank's samples of the next batch, without consuming it. */
  public List<SftExample> peek() {
    int[] global = sampler.batch(cursor);
    int per = global.length / worldSize;
    List<SftExample> b = new ArrayList<>();
    for (int j = rank * per; j < (rank + 1) * per; j++) b.add(data.get(global[j]));
    return b;
  }

  @Override
  public LabelledBatch next() {
    SftCollator.Arrays a = collator.batch(peek());
    cursor = sampler.advance(cursor);
    return toDevice(a, device, cursor);
  }

  /** A collated batch on {@code device}. */
  public static LabelledBatch toDevice(SftCollator.Arrays a, Device device, Cursor after) {
    Tensor[] t = a.tensors();
    if (device.isCuda()) {
      for (int i = 0; i < t.length; i++) {
        Tensor host = t[i];
        t[i] = host.to(device, DType.I64, false);
        host.close();
      }
    }
    return t.length == 2
        ? new LabelledBatch(t[0], t[1], a.trained(), after, null)
        : new LabelledBatch(t[0], t[1], a.trained(), after, null, t[2], t[3]);
  }

  @Override
  public void close() {}
}
