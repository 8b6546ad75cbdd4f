package dev.hanlin.torch.cuda;

/** NVRTC could not be loaded or a kernel did not compile; {@link #log()} is NVRTC's own output. */
public final class NvrtcException extends RuntimeException {
  private final String log;

  public NvrtcException(String message, String log) {
    super(log == null || log.isBlank() ? message : message + "\n" + log.strip());
    this.log = log == null ? "" : log;
  }

  /** The compiler's log (empty when there was none). */
  public String log() {
    return log;
  }
}
