package dev.hanlin.train;

import java.nio.file.Files;
import java.nio.file.Path;

/** Finds the repository's test-data folder from a module's working directory. */
final class TestData {
  private TestData() {}

  static Path dir(String name) {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      Path d = p.resolve("test-data").resolve(name);
      if (Files.isDirectory(d)) return d;
    }
    throw new IllegalStateException(
        "test-data/" + name + " not found above " + Path.of("").toAbsolutePath());
  }
}
