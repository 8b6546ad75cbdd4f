package dev.hanlin.tokenizer;

import java.io.IOException;

/**
 * A malformed tokenizer file ({@code tokenizer.model} or {@code tokenizer.json}): the one error
 * type their parsers throw on bad input, whatever the bytes. The message names the file and the
 * byte offset (the protobuf reader), or the file and the JSON key (tokenizer.json semantics).
 */
public class TokenizerFormatException extends IOException {
  public TokenizerFormatException(String message) {
    super(message);
  }

  public TokenizerFormatException(String message, Throwable cause) {
    super(message, cause);
  }

  /** "{@code what} at byte {@code offset}: {@code problem}". */
  static TokenizerFormatException at(String what, long offset, String problem) {
    return new TokenizerFormatException(what + " at byte " + offset + ": " + problem);
  }
}
