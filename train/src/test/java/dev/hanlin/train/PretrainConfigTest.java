package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** zero_stage's values, and what stage 2 needs. */
class PretrainConfigTest {
  static PretrainConfig with(Map<String, Object> keys) {
    Map<String, Object> all = new HashMap<>(keys);
    all.putAll(
        Map.of("tokenizer", "t.model", "output_dir", "out", "data_dir", "d", "model_config", "c"));
    return PretrainConfig.load(null, all);
  }

  @Test
  void zeroStage2NeedsGradientCheckpointing() {
    var e = assertThrows(RuntimeException.class, () -> with(Map.of("zero_stage", 2)));
    assertTrue(
        e.getMessage().contains("zero_stage: 2")
            && e.getMessage().contains("gradient_checkpointing: true"),
        e.getMessage());
    assertEquals(
        2, with(Map.of("zero_stage", 2, "gradient_checkpointing", true)).zeroStage().intValue());
    var three = assertThrows(RuntimeException.class, () -> with(Map.of("zero_stage", 3)));
    assertTrue(three.getMessage().contains("'zero_stage' must be 0"), three.getMessage());
  }
}
