package dev.hanlin.train;

import static dev.hanlin.train.PretrainConfigTest.with;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code save_strategy} (HF's key: steps or no) and {@code offload_optimizer_pipeline}: defaults
 * that leave existing runs as they were, and errors naming the key.
 */
class SaveStrategyConfigTest {
  @Test
  void byDefaultTheRunCheckpointsAndOffloadIsPipelined() {
    PretrainConfig c = with(Map.of());
    assertTrue(c.savesCheckpoints());
    assertNull(c.saveStrategy(), "absent from the resolved config unless set");
    assertTrue(with(Map.of("offload_optimizer", "cpu")).offloadPipeline());
    assertTrue(with(Map.of("save_strategy", "STEPS", "save_steps", 5)).savesCheckpoints());
  }

  @Test
  void noWritesNoCheckpoints() {
    assertFalse(with(Map.of("save_strategy", "no")).savesCheckpoints());
    assertFalse(
        with(Map.of("offload_optimizer", "cpu", "offload_optimizer_pipeline", false))
            .offloadPipeline());
  }

  /** Plain YAML {@code no} (a YAML 1.1 boolean to some readers) is the word no here. */
  @Test
  void anUnquotedNoInAYamlFileIsTheStrategy(@TempDir Path tmp) throws Exception {
    Path yaml = tmp.resolve("run.yaml");
    Files.writeString(
        yaml,
        "tokenizer: t.model\noutput_dir: out\ndata_dir: d\nmodel_config: c\nsave_strategy: no\n");
    assertFalse(PretrainConfig.load(yaml, Map.of()).savesCheckpoints());
    // with a flag too the file is merged as a tree, where YAML 1.1 made the no a boolean false
    assertFalse(PretrainConfig.load(yaml, Map.of("max_steps", 7)).savesCheckpoints());
    // --set save_strategy=no: the flag's value read as a YAML scalar is that same false
    assertFalse(PretrainConfig.load(yaml, Map.of("save_strategy", false)).savesCheckpoints());
    assertEquals("no", with(Map.of("save_strategy", false)).saveStrategy());
  }

  @Test
  void otherValuesAndContradictionsAreRefusedNamingTheKey() {
    for (var bad :
        Map.of(
                "'save_strategy' must be steps",
                Map.<String, Object>of("save_strategy", "epoch"),
                "'save_strategy: no' writes no checkpoints: leave 'save_steps' out",
                Map.<String, Object>of("save_strategy", "no", "save_steps", 10),
                "'offload_optimizer_pipeline' is about 'offload_optimizer: cpu'",
                Map.<String, Object>of("offload_optimizer_pipeline", true))
            .entrySet()) {
      var e = assertThrows(RuntimeException.class, () -> with(bad.getValue()), bad.getKey());
      assertTrue(e.getMessage().contains(bad.getKey()), e.getMessage());
    }
    assertEquals(
        "steps", with(Map.of("save_strategy", "steps")).saveStrategy(), "normalized to lower case");
  }
}
