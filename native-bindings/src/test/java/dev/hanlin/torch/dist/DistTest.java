package dev.hanlin.torch.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The identity read from torchrun's and SLURM's variables, and a single process's group. (The
 * trainer's gradient policies are tested in train's {@code parallel} package.)
 */
class DistTest {
  @Test
  void torchrunVariables() {
    Dist d =
        Dist.fromEnv(
            Map.of(
                "RANK", "5",
                "LOCAL_RANK", "1",
                "WORLD_SIZE", "8",
                "LOCAL_WORLD_SIZE", "4",
                "MASTER_ADDR", "10.0.0.7",
                "MASTER_PORT", "29501"));
    assertEquals(new Dist(5, 1, 8, 4, "10.0.0.7", 29501), d);
    assertFalse(d.isMain());
    assertTrue(d.isDistributed());
  }

  @Test
  void slurmVariablesWhenTorchrunsAreAbsent() {
    Dist d =
        Dist.fromEnv(
            Map.of(
                "SLURM_PROCID", "6",
                "SLURM_NTASKS", "8",
                "SLURM_LOCALID", "2",
                "SLURM_TASKS_PER_NODE", "4(x2)",
                "SLURM_JOB_NODELIST", "gpu[07-08],cpu1"));
    assertEquals(new Dist(6, 2, 8, 4, "gpu07", Dist.DEFAULT_PORT), d);
    assertEquals("node", Dist.firstHost("node"));
    assertEquals("a12", Dist.firstHost("a[12,15-16]"));
  }

  @Test
  void noVariablesIsOneProcessAndBadOnesAreNamed() {
    assertEquals(Dist.SINGLE, Dist.fromEnv(Map.of()));
    assertTrue(Dist.SINGLE.isMain());
    assertFalse(Dist.SINGLE.isDistributed());
    var e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Dist.fromEnv(Map.of("RANK", "x", "WORLD_SIZE", "2")));
    assertTrue(e.getMessage().contains("RANK=x"), e.getMessage());
    assertThrows(
        IllegalArgumentException.class, () -> Dist.fromEnv(Map.of("RANK", "2", "WORLD_SIZE", "2")));
  }

  @Test
  void aSingleGroupIsANoOp() {
    try (Group g = Group.single()) {
      assertFalse(g.isDistributed());
      assertEquals(3.5, g.sum(3.5)[0]);
      assertTrue(g.any(true));
      g.barrier();
    }
  }
}
