package dev.hanlin.torch.dist;

/**
 * A collective or the rendezvous failed: usually another rank died (connection closed) or hung
 * (timeout). The run can resume from its last checkpoint.
 */
public final class DistException extends RuntimeException {
  public DistException(String message, Throwable cause) {
    super(message, cause);
  }
}
