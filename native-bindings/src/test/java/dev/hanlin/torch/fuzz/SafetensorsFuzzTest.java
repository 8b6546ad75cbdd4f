package dev.hanlin.torch.fuzz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.safetensors.SafetensorsException;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzes the safetensors reader: the whole file (length, JSON header, data) is the input. What it
 * accepts is loaded tensor by tensor into libtorch, so a header that passes validation but lets a
 * view read outside the mapping shows as a JVM crash. Seeds:
 * src/test/resources/dev/hanlin/torch/fuzz/SafetensorsFuzzTestInputs
 * (test-data/fuzz/make_seeds.py). A finding is anything but a {@link SafetensorsException}, a hang,
 * or a crash.
 */
class SafetensorsFuzzTest extends LibtorchFuzzTarget {

  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  @FuzzTest(maxDuration = "30s")
  void safetensors(byte[] bytes) throws Exception {
    onTempFile(
        ".safetensors",
        file -> {
          Files.write(file, bytes);
          try (SafetensorsFile f = SafetensorsFile.open(file);
              Scope s = Scope.open()) {
            for (String name : f.names()) {
              f.load(name).sum();
              f.bytes(name);
            }
            f.metadata();
          } catch (SafetensorsException e) {
            // the reader's own error: names the file; expected for most mutations
          }
        });
  }

  /** The valid seeds open and hold what make_seeds.py wrote, so mutations start past the header. */
  @Test
  void validSeedsOpen() throws Exception {
    Path dir =
        Path.of("src/test/resources/dev/hanlin/torch/fuzz/SafetensorsFuzzTestInputs/safetensors");
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("valid.safetensors"));
        Scope s = Scope.open()) {
      assertEquals(4, f.names().size());
      assertEquals("pt", f.metadata().get("format"));
      Tensor w = f.load("model.embed_tokens.weight");
      assertArrayEquals(new long[] {2, 3}, w.shape());
      assertEquals(1f, w.toFloatArray()[0]);
    }
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("scalar_u8_bool.safetensors"))) {
      assertEquals(2, f.names().size());
    }
  }
}
