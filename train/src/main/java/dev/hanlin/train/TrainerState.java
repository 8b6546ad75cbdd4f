package dev.hanlin.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.hanlin.data.Cursor;

/**
 * What a checkpoint needs besides tensors to continue a run exactly: the optimizer steps taken, the
 * data cursor after the last step, the streak of skipped non-finite steps, and tokens seen.
 */
public record TrainerState(
    @JsonProperty("step") long step,
    @JsonProperty("cursor") Cursor cursor,
    @JsonProperty("nonfinite_streak") int nonfiniteStreak,
    @JsonProperty("tokens_seen") long tokensSeen,
    @JsonProperty("format") int format) {
  public static final int FORMAT = 1;

  public static TrainerState start() {
    return new TrainerState(0, Cursor.START, 0, 0, FORMAT);
  }
}
