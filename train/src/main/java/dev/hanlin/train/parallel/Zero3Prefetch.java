package dev.hanlin.train.parallel;

/**
 * Which stage ZeRO-3 gathers ahead (FSDP's forward and backward prefetch, one unit ahead): the
 * recomputing backward enters the embedding (-1), the blocks 0 to L-1 and the head (L) going
 * forward, then the blocks from L-1 down to 0 and the embedding again going backward. As it enters
 * a stage, the all-gather of the stage it enters next is started, so that it runs while this one
 * computes; the walk frees each stage as before, so at most two stages' weights are gathered at
 * once. One per walk (one micro-batch).
 */
final class Zero3Prefetch {
  /** No stage to prefetch. */
  static final int NONE = Integer.MIN_VALUE;

  /**
   * The switch for measuring prefetch on against off ({@code HANLIN_ZERO3_PREFETCH=0}): it moves no
   * number, only when the gathers run.
   */
  static final String ENV = "HANLIN_ZERO3_PREFETCH";

  private final int layers;
  private final boolean backToEmbedding;
  private boolean backward;

  Zero3Prefetch(int layers) {
    this(layers, true);
  }

  /**
   * With {@code backToEmbedding} false, the embedding is not gathered ahead of its backward: a
   * frozen embedding (LoRA) has none, and the walk never enters it going backward.
   */
  Zero3Prefetch(int layers, boolean backToEmbedding) {
    this.layers = layers;
    this.backToEmbedding = backToEmbedding;
  }

  /** Whether the environment leaves prefetch on (the default). */
  static boolean enabled() {
    String v = System.getenv(ENV);
    return v == null || !(v.equals("0") || v.equalsIgnoreCase("false") || v.equals("off"));
  }

  /** The stage to gather ahead as the walk enters {@code stage}, or {@link #NONE}. */
  int next(int stage) {
    if (stage == layers) { // the head: the backward starts with the last block
      backward = true;
      return layers - 1;
    }
    if (!backward) return stage + 1;
    if (stage > 0) return stage - 1;
    if (stage == 0) return backToEmbedding ? -1 : NONE; // block 0's backward, then the embedding's
    backward = false; // the embedding's backward ends the walk
    return NONE;
  }
}
