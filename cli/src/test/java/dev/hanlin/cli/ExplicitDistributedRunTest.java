package dev.hanlin.cli;

import static dev.hanlin.cli.DistributedRunTest.config;
import static dev.hanlin.cli.DistributedRunTest.finish;
import static dev.hanlin.cli.DistributedRunTest.launch;
import static dev.hanlin.cli.DistributedRunTest.losses;
import static dev.hanlin.cli.DistributedRunTest.maxWeightDifference;
import static dev.hanlin.cli.DistributedRunTest.read;
import static dev.hanlin.cli.DistributedRunTest.runOnTwoProcesses;
import static dev.hanlin.cli.DistributedRunTest.trainMetric;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The explicit backward on several ranks (Gloo on the CPU, two child JVMs by bin/launch): DDP and
 * ZeRO-1 all-reduce its gradients by backward stages (its gradients bypass the autograd hooks DDP's
 * Reducer listens to), and give the losses, gradient norms and weights of one process with the same
 * global batch, also with accumulated micro-batches (which stay local until the step's last) and
 * with gradient checkpointing. Before, the run fell back to autograd's backward with a log line.
 * Slow: three runs of child JVMs.
 */
@Tag("slow")
class ExplicitDistributedRunTest {
  private static final int STEPS = 6;
  private static final String EXPLICIT = "explicit_backward: true\n";

  @Test
  void ddpAndZero1WithTheExplicitBackwardGiveTheRunOfOneProcess(@TempDir Path tmp)
      throws Exception {
    Path data = tmp.resolve("data");
    Path one = tmp.resolve("one"), log1 = tmp.resolve("one.log");
    assertEquals(
        0,
        finish(launch(config(one, data, STEPS, 4, EXPLICIT), log1, "--nproc-per-node", "1"), log1),
        () -> read(log1));
    for (String extra :
        List.of(
            "gradient_accumulation_steps: 2", // DDP, 1 block per rank and micro-batch
            "zero_stage: 1\ngradient_checkpointing: true\ngradient_accumulation_steps: 2",
            "zero_stage: 3\ngradient_checkpointing: true\ngradient_accumulation_steps: 2")) {
      Path two = tmp.resolve("two" + extra.length()), log = tmp.resolve("two.log");
      runOnTwoProcesses(config(two, data, STEPS, 1, EXPLICIT + extra), log);
      String out = read(log);
      assertFalse(out.contains("not supported"), out);
      assertTrue(out.contains("the hand-written block backward runs"), out);
      List<Double> want = losses(one), got = losses(two);
      assertEquals(STEPS, got.size(), extra);
      List<Double> wantNorm = trainMetric(one, "grad_norm"), norm = trainMetric(two, "grad_norm");
      for (int i = 0; i < STEPS; i++) {
        assertEquals(want.get(i), got.get(i), 1e-5, extra + ": loss at step " + (i + 1));
        assertEquals(
            wantNorm.get(i), norm.get(i), 1e-5 * wantNorm.get(i), extra + ": norm " + (i + 1));
      }
      assertTrue(maxWeightDifference(one, two) < 1e-4, extra + ": final weights differ");
    }
  }

  /**
   * LoRA with ZeRO-3 (the frozen base sharded, gathered stage by stage) on two processes with
   * accumulation gives the losses of the plain LoRA run on one, both with the explicit backward.
   */
  @Test
  void loraWithZero3AndTheExplicitBackwardGivesThePlainLoraRun(@TempDir Path tmp) throws Exception {
    Path one = tmp.resolve("one"), two = tmp.resolve("two"), log = tmp.resolve("two.log");
    Zero3LoraRunTest.run(
        1,
        Zero3LoraRunTest.config(one, "", 6, 1, Zero3LoraRunTest.lora(EXPLICIT)),
        tmp.resolve("one.log"));
    Zero3LoraRunTest.run(
        2,
        Zero3LoraRunTest.config(two, "", 1, 3, Zero3LoraRunTest.lora(EXPLICIT + "zero_stage: 3\n")),
        log);
    assertTrue(read(log).contains("the hand-written block backward runs"), read(log));
    Zero3LoraRunTest.assertLosses(one, two, 0, 1e-5);
  }
}
