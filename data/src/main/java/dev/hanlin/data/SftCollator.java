package dev.hanlin.data;

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

  public SftCollator(int padId, int padToMultipleOf, int maxLength) {
    this.padId = padId;
    this.multiple = padToMultipleOf;
    this.maxLength = maxLength;
  }

  /** The padded length for a batch whose longest sample has {@code longest} tokens. */
  public int paddedLength(int longest) {
    int l = (longest + multiple - 1) / multiple * multiple;
    return Math.max(longest, Math.min(l, maxLength));
  }

  /** Host-side arrays of one batch. */
  public record Arrays(long[] inputs, long[] targets, int rows, int length, long trained) {
    /** As int64 CPU tensors (B, L). */
    public Tensor[] tensors() {
      return new Tensor[] {
        Torch.fromLongs(inputs, rows, length), Torch.fromLongs(targets, rows, length)
      };
    }
  }

  public Arrays collate(List<SftExample> batch) {
    int longest = 0;
    for (SftExample e : batch) longest = Math.max(longest, e.length());
    int l = paddedLength(longest), b = batch.size();
    long[] in = new long[b * l], tg = new long[b * l];
    java.util.Arrays.fill(in, padId);
    java.util.Arrays.fill(tg, SftExample.IGNORE);
    long trained = 0;
    for (int r = 0; r < b; r++) {
      SftExample e = batch.get(r);
      int[] ids = e.ids(), labels = e.labels();
      for (int j = 0; j < ids.length; j++) in[r * l + j] = ids[j];
      for (int j = 0; j + 1 < ids.length; j++) {
        tg[r * l + j] = labels[j + 1];
        if (labels[j + 1] != SftExample.IGNORE) trained++;
      }
    }
    return new Arrays(in, tg, b, l, trained);
  }
}
