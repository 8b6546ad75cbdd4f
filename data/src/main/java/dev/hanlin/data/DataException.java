package dev.hanlin.data;

/**
 * A data problem that the user must fix (bad input past the threshold, a corrupt or foreign shard,
 * a tokenizer mismatch); the message says what and where.
 */
public class DataException extends RuntimeException {
  public DataException(String message) {
    super(message);
  }

  public DataException(String message, Throwable cause) {
    super(message, cause);
  }
}
