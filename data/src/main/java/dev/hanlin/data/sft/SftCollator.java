package dev.hanlin.data.sft;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.List;

/**
 * Samples to one right-padded batch: inputs (B, L) and next-token targets (B, L), where L is the
 * batch's longest sample rounded up to a multiple of {@code padToMultipleOf} (never beyond {@code
 * maxLength}). Targets are the labels shifted left by one; the last position of every sample and
 * every padding position are −100.
 */
public final class SftCollator {
  private final int padId;
  private final int multiple;
  private final int maxLength;
  private final boolean pack;

  public SftCollator(int padId, int padToMultipleOf, int maxLength) {
    this(padId, padToMultipleOf, maxLength, false);
  }

  /** With {@code pack}, {@link #batch} packs samples into rows (see {@link #pack}). */
  public SftCollator(int padId, int padToMultipleOf, int maxLength, boolean pack) {
    this.padId = padId;
    this.multiple = padToMultipleOf;
    this.maxLength = maxLength;
    this.pack = pack;
  }

  /** A training batch: packed rows or one padded row per sample, as configured. */
  public Arrays batch(List<SftExample> samples) {
    return pack ? pack(samples) : collate(samples);
  }

  /** The padded length for a batch whose longest sample has {@code longest} tokens. */
  public int paddedLength(int longest) {
    int l = (longest + multiple - 1) / multiple * multiple;
    return Math.max(longest, Math.min(l, maxLength));
  }

  /**
   * Host-side arrays of one batch, each (rows, length); {@code positions} and {@code segments} are
   * null unless the rows are packed.
   */
  public record Arrays(
      long[] inputs,
      long[] targets,
      int rows,
      int length,
      long trained,
      long[] positions,
      long[] segments) {
    public Arrays(long[] inputs, long[] targets, int rows, int length, long trained) {
      this(inputs, targets, rows, length, trained, null, null);
    }

    /** As int64 CPU tensors (B, L): inputs, targets, and for packed rows positions, segments. */
    public Tensor[] tensors() {
      Tensor in = Torch.fromLongs(inputs, rows, length),
          tg = Torch.fromLongs(targets, rows, length);
      if (positions == null) return new Tensor[] {in, tg};
      return new Tensor[] {
        in, tg, Torch.fromLongs(positions, rows, length), Torch.fromLongs(segments, rows, length)
      };
    }
  }

  /**
   * Packs samples, in order, first-fit into rows of at most {@code maxLength} tokens, so several
   * short samples share a row with little padding. Positions restart at 0 at every sample and
   * segments number the samples of a row, so the model keeps attention within each sample; each
   * sample's last target is −100 (it must not predict the next sample). The padding at a row's end
   * is a segment of its own. The row length is the fullest row rounded up to the multiple.
   */
  public Arrays pack(List<SftExample> samples) {
    List<List<SftExample>> rows = new java.util.ArrayList<>();
    List<Integer> fill = new java.util.ArrayList<>();
    for (SftExample e : samples) {
      int r = 0;
      while (r < rows.size() && fill.get(r) + e.length() > maxLength) r++;
      if (r == rows.size()) {
        rows.add(new java.util.ArrayList<>());
        fill.add(0);
      }
      rows.get(r).add(e);
      fill.set(r, fill.get(r) + e.length());
    }
    int l = paddedLength(fill.stream().mapToInt(Integer::intValue).max().orElse(1));
    int b = rows.size();
    long[] in = new long[b * l], tg = new long[b * l], pos = new long[b * l], seg = new long[b * l];
    java.util.Arrays.fill(tg, Torch.IGNORE_INDEX);
    long trained = 0;
    for (int r = 0; r < b; r++) {
      int at = r * l, s = 0;
      for (SftExample e : rows.get(r)) {
        int[] ids = e.ids(), labels = e.labels();
        for (int j = 0; j < ids.length; j++, at++) {
          in[at] = ids[j];
          pos[at] = j;
          seg[at] = s;
          if (j + 1 < ids.length) {
            tg[at] = labels[j + 1];
            if (labels[j + 1] != Torch.IGNORE_INDEX) trained++;
          }
        }
        s++;
      }
      for (int j = 0; at < (r + 1) * l; j++, at++) {
        in[at] = padId;
        pos[at] = j;
        seg[at] = s;
      }
    }
    return new Arrays(in, tg, b, l, trained, pos, seg);
  }

  public Arrays collate(List<SftExample> batch) {
    int longest = 0;
    for (SftExample e : batch) longest = Math.max(longest, e.length());
    int l = paddedLength(longest), b = batch.size();
    long[] in = new long[b * l], tg = new long[b * l];
    java.util.Arrays.fill(in, padId);
    java.util.Arrays.fill(tg, Torch.IGNORE_INDEX);
    long trained = 0;
    for (int r = 0; r < b; r++) {
      SftExample e = batch.get(r);
      int[] ids = e.ids(), labels = e.labels();
      for (int j = 0; j < ids.length; j++) in[r * l + j] = ids[j];
      for (int j = 0; j + 1 < ids.length; j++) {
        tg[r * l + j] = labels[j + 1];
        if (labels[j + 1] != Torch.IGNORE_INDEX) trained++;
      }
    }
    return new Arrays(in, tg, b, l, trained);
  }
}
