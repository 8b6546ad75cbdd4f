package dev.hanlin.data;

import java.nio.file.Files;
import java.nio.file.Path;

/** The fuzz targets' file readers take a path: each input is written to a temp file of its own. */
public final class FuzzFiles {
  private FuzzFiles() {}

  /** What a target does with the file holding its input. */
  @FunctionalInterface
  public interface Body {
    void accept(Path file) throws Exception;
  }

  /**
   * Writes {@code bytes} to a new temp file named {@code *suffix} (readers pick the format from the
   * extension), runs {@code body} on it and deletes it, whatever the body throws.
   */
  public static void onTempFile(String suffix, byte[] bytes, Body body) throws Exception {
    Path file = Files.createTempFile("fuzz", suffix);
    try {
      Files.write(file, bytes);
      body.accept(file);
    } finally {
      Files.deleteIfExists(file);
    }
  }
}
