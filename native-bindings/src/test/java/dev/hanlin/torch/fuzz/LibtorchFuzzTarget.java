package dev.hanlin.torch.fuzz;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;

/**
 * What the fuzz targets of this module share: libtorch loaded before the first input, and a temp
 * file for each input (the readers take a path).
 */
abstract class LibtorchFuzzTarget {
  /** Loads libtorch before the first input, whose per-input timeout is not meant for that. */
  @BeforeAll
  static void loadLibtorch() {
    try (Scope s = Scope.open()) {
      Torch.zeros(DType.F32, Device.CPU, 1).sum();
    }
  }

  /** What a target does with its temp file: write the input there, then read it back. */
  @FunctionalInterface
  interface Body {
    void accept(Path file) throws Exception;
  }

  /** Runs {@code body} on a new temp file named {@code *suffix}, deleted whatever it throws. */
  static void onTempFile(String suffix, Body body) throws Exception {
    Path file = Files.createTempFile("fuzz", suffix);
    try {
      body.accept(file);
    } finally {
      Files.deleteIfExists(file);
    }
  }
}
