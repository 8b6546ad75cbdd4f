package dev.hanlin.data.prepare;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.hanlin.config.ConfigException;
import dev.hanlin.data.FuzzFiles;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzes StrictYaml onto PrepareConfig ({@code --mode prepare --config}), with and without a
 * command-line override (the two paths through StrictYaml.read). Seeds:
 * src/test/resources/dev/hanlin/data/prepare/PrepareConfigFuzzTestInputs. A finding is anything but
 * ConfigException, a hang, or a crash.
 */
class PrepareConfigFuzzTest {

  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  @FuzzTest(maxDuration = "30s")
  void prepareConfig(byte[] bytes) throws Exception {
    FuzzFiles.onTempFile(
        ".yaml",
        bytes,
        file -> {
          for (Map<String, Object> overrides : YamlFuzz.OVERRIDES) {
            try {
              PrepareConfig.load(file, overrides).readerOptions();
            } catch (ConfigException e) {
              // the documented error, naming file, key and line
            }
          }
        });
  }

  /** The example config seed is accepted, so mutations start from a config that loads. */
  @Test
  void exampleSeedLoads() {
    PrepareConfig.load(
        Path.of(
            "src/test/resources/dev/hanlin/data/prepare/PrepareConfigFuzzTestInputs/prepareConfig/prepare-example.yaml"),
        Map.of());
  }
}
