package dev.hanlin.data;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * Where a {@link StreamingLoader} stands. The shuffle buffer is rebuilt, not saved: {@code
 * generation} names a buffer (its shuffle seed is derived from the run's seed, {@code epoch} and
 * {@code generation}) whose first token is token {@code skip} of record {@code record} of input
 * file {@code file} (a position in the epoch's file order); {@code position} blocks of it have been
 * consumed. Resuming re-reads and re-tokenizes one buffer's worth of text, nothing more.
 */
public record StreamCursor(
    @JsonProperty("epoch") long epoch,
    @JsonProperty("file") int file,
    @JsonProperty("record") long record,
    @JsonProperty("skip") int skip,
    @JsonProperty("generation") long generation,
    @JsonProperty("position") long position) {

  public static final StreamCursor START = new StreamCursor(0, 0, 0, 0, 0, 0);

  public StreamCursor {
    if (epoch < 0 || file < 0 || record < 0 || skip < 0 || generation < 0 || position < 0) {
      throw new IllegalArgumentException("negative field in " + this);
    }
  }
}
