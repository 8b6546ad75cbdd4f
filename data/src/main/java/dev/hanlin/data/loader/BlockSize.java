package dev.hanlin.data.loader;

/** The training block size: default min(1024, the model's max positions), capped by it. */
public final class BlockSize {
  private BlockSize() {}

  public static final int DEFAULT = 1024;

  private static final System.Logger LOG = System.getLogger(BlockSize.class.getName());

  /** {@code requested} (null for the default) resolved against the model's max positions. */
  public static int resolve(Integer requested, int maxPositions) {
    if (maxPositions < 1) throw new IllegalArgumentException("max positions " + maxPositions);
    if (requested == null) return Math.min(DEFAULT, maxPositions);
    if (requested < 1) throw new IllegalArgumentException("block_size must be >= 1: " + requested);
    if (requested > maxPositions) {
      LOG.log(
          System.Logger.Level.WARNING,
          "block_size {0} exceeds the model''s max_position_embeddings {1}; using {1}",
          requested,
          maxPositions);
      return maxPositions;
    }
    return requested;
  }
}
