package dev.hanlin.torch.safetensors;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A safetensors file or sharded checkpoint that cannot be read or written. The message always names
 * the file, and the tensor and offsets where there is one, so a bad checkpoint can be found without
 * a debugger.
 */
public final class SafetensorsException extends IOException {
  private final Path file;

  public SafetensorsException(Path file, String message) {
    super(file + ": " + message);
    this.file = file;
  }

  public SafetensorsException(Path file, String message, Throwable cause) {
    super(file + ": " + message, cause);
    this.file = file;
  }

  /** The file (or checkpoint folder) the error is about. */
  public Path file() {
    return file;
  }
}
