package dev.hanlin.data.sft;

import dev.hanlin.torch.Torch;

/**
 * One tokenized instruction-tuning sample: {@code ids} as the model reads them and, position by
 * position, the {@code labels} the loss sees ({@link Torch#IGNORE_INDEX} where nothing is trained,
 * else the id itself). The shift to next-token targets happens in {@link SftCollator}.
 */
public record SftExample(int[] ids, int[] labels) {
  public SftExample {
    if (ids.length != labels.length)
      throw new IllegalArgumentException(
          "ids and labels differ in length: " + ids.length + " vs " + labels.length);
  }

  public int length() {
    return ids.length;
  }

  /** Positions whose next token is trained (what the loss divides by). */
  public int trainedTokens() {
    int n = 0;
    for (int i = 1; i < labels.length; i++) if (labels[i] != Torch.IGNORE_INDEX) n++;
    return n;
  }
}
