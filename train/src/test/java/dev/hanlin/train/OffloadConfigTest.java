package dev.hanlin.train;

import static dev.hanlin.train.PretrainConfigTest.with;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** The keys of offloading and ZeRO-2's overlapped reduce: defaults, and checks naming the key. */
class OffloadConfigTest {
  @Test
  void defaultsLeaveExistingRunsAsTheyWere() {
    PretrainConfig c = with(Map.of());
    assertEquals("none", c.offloadOptimizer());
    assertFalse(c.offloadsOptimizer());
    assertFalse(c.overlapComm(), "DeepSpeed's default: one reduce per weight, as before");
    assertEquals(500_000_000L, c.reduceBucketSize());
  }

  @Test
  void offloadIsBf16FullTrainingWithZeroUpToStage2() {
    assertTrue(with(Map.of("offload_optimizer", "CPU")).offloadsOptimizer());
    assertTrue(
        with(Map.of("offload_optimizer", "cpu", "zero_stage", 2, "gradient_checkpointing", true))
            .offloadsOptimizer());
    for (var bad :
        Map.of(
                "'offload_optimizer' must be none or cpu",
                Map.<String, Object>of("offload_optimizer", "nvme"),
                "needs 'bf16'",
                Map.<String, Object>of("offload_optimizer", "cpu", "bf16", false),
                "leave 'master_weights' out",
                Map.<String, Object>of("offload_optimizer", "cpu", "master_weights", true),
                "'offload_optimizer' is for full training",
                Map.<String, Object>of("offload_optimizer", "cpu", "lora_r", 8, "sft", Map.of()))
            .entrySet()) {
      var e = assertThrows(RuntimeException.class, () -> with(bad.getValue()), bad.getKey());
      assertTrue(e.getMessage().contains(bad.getKey()), e.getMessage());
    }
    var e = assertThrows(RuntimeException.class, () -> with(Map.of("reduce_bucket_size", 0)));
    assertTrue(e.getMessage().contains("'reduce_bucket_size' must be > 0"), e.getMessage());
  }
}
