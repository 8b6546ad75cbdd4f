package dev.hanlin.train.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.hanlin.config.ConfigException;
import dev.hanlin.train.PretrainConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzes StrictYaml onto PretrainConfig (the {@code --config} of pretrain and sft), with and
 * without a {@code --set} override, the two paths through StrictYaml.read. Seeds: the configs/
 * files and a few bad ones, in
 * src/test/resources/dev/hanlin/train/fuzz/PretrainConfigFuzzTestInputs. A finding is anything but
 * ConfigException, a hang, or a crash.
 */
class PretrainConfigFuzzTest {
  private static final List<Map<String, Object>> OVERRIDES =
      List.of(Map.of(), Map.of("max_steps", 5));

  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  @FuzzTest(maxDuration = "30s")
  void pretrainConfig(byte[] bytes) throws Exception {
    Path file = Files.createTempFile("fuzz", ".yaml");
    try {
      Files.write(file, bytes);
      for (Map<String, Object> overrides : OVERRIDES) {
        try {
          PretrainConfig c = PretrainConfig.load(file, overrides);
          c.tokensPerStep(16);
        } catch (ConfigException e) {
          // the documented error, naming file, key and line
        }
      }
    } finally {
      Files.deleteIfExists(file);
    }
  }

  /** The configs/ seeds are accepted, so mutations start from configs that load. */
  @Test
  void configSeedsLoad() {
    Path dir =
        Path.of(
            "src/test/resources/dev/hanlin/train/fuzz/PretrainConfigFuzzTestInputs/pretrainConfig");
    PretrainConfig.load(dir.resolve("pretrain-demo.yaml"), Map.of());
    PretrainConfig.load(dir.resolve("sft-example.yaml"), Map.of());
  }
}
