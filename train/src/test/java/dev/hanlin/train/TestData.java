package dev.hanlin.train;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Finds the repository's test-data folder from a module's working directory. */
final class TestData {
  private TestData() {}

  /** The tiny parity checkpoints the backward tests run on: grouped-query attention, tied head. */
  static final String[] PARITY_MODELS = {"gqa", "tied"};

  /** Loads test-data/parity/{@code name} in F32 on the CPU with every weight needing gradients. */
  static LlamaModel trainableParityModel(String name) throws IOException {
    LlamaModel m = HfCheckpoint.load(dir("parity").resolve(name), DType.F32, Device.CPU);
    for (Tensor w : m.weights().values()) w.requiresGrad(true);
    return m;
  }

  static Path dir(String name) {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      Path d = p.resolve("test-data").resolve(name);
      if (Files.isDirectory(d)) return d;
    }
    throw new IllegalStateException(
        "test-data/" + name + " not found above " + Path.of("").toAbsolutePath());
  }
}
