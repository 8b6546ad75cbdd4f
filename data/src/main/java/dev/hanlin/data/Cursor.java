package dev.hanlin.data;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * Where the loader stands: the epoch, and how many blocks of that epoch's shuffled order all ranks
 * together have consumed. It is the same on every rank, so one copy goes into the checkpoint, and a
 * loader started from it yields exactly the batches that would have come next.
 */
public record Cursor(@JsonProperty("epoch") long epoch, @JsonProperty("position") long position) {
  public static final Cursor START = new Cursor(0, 0);

  public Cursor {
    if (epoch < 0 || position < 0) {
      throw new IllegalArgumentException("cursor (" + epoch + ", " + position + ") is negative");
    }
  }
}
