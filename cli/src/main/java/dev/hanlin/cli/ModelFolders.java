package dev.hanlin.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/** The checks every mode that reads an HF model folder makes before it loads anything. */
final class ModelFolders {
  private ModelFolders() {}

  /**
   * Fails with a message about the folder itself when it is missing or holds no config.json, so a
   * mistyped {@code --model} is not reported as a missing tokenizer or weight file.
   */
  static void requireModel(Path dir) {
    if (!Files.exists(dir))
      throw new IllegalArgumentException("--model " + dir + ": no such folder");
    if (!Files.isDirectory(dir))
      throw new IllegalArgumentException(
          "--model " + dir + ": not a folder (give the HF model folder holding config.json)");
    if (!Files.exists(dir.resolve("config.json")))
      throw new IllegalArgumentException(
          "--model " + dir + ": no config.json there (is it an HF model folder?)");
  }
}
