package dev.hanlin.cli;

import static dev.hanlin.cli.PretrainRunTest.losses;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Offload's pipelined update ({@code offload_optimizer_pipeline}, on by default) against the
 * unpipelined one on whole CPU runs: the same fp32 math in another order in time, so the losses,
 * gradient norms, checkpoints (fp32 masters and AdamW state) and exports are the same bit for bit;
 * with the recomputing backward (whose stage hooks gate each unit's forward) and the explicit one
 * (the same hooks), with accumulation, and with ZeRO-2 on two processes (where the update is waited
 * for before the owners send it).
 */
class OffloadPipelineRunTest {
  static final int STEPS = 20;
  static final String OFFLOAD =
      "bf16: true\noffload_optimizer: cpu\ngradient_checkpointing: true\n";
  static final String OFF = "offload_optimizer_pipeline: false\n";
  @TempDir static Path shared;

  static Path config(Path dir, int steps, int batch, String extra) throws IOException {
    return TinyRun.small(
        dir,
        shared.resolve("data"),
        steps,
        batch,
        """
        learning_rate: 3.0e-3
        warmup_steps: 3
        max_eval_batches: 1
        save_steps: 10
        logging_steps: 1
        device: cpu
        dist_timeout_seconds: 30
        %s
        """
            .formatted(extra));
  }

  static void run(Path yaml, Path log) throws Exception {
    int rc = TinyRun.finish(TinyRun.pretrain(yaml, log), log, 5);
    assertEquals(0, rc, () -> DistributedRunTest.read(log));
  }

  /** Losses, norms, both checkpoints and the export of {@code a} and {@code b} are equal. */
  static void assertSameRun(Path a, Path b, int steps) throws IOException {
    assertEquals(steps, losses(a).size());
    assertEquals(losses(a), losses(b)); // "step:loss:grad_norm" as written
    assertEquals(0.0, DistributedRunTest.maxWeightDifference(a, b));
    for (int step = 10; step <= steps; step += 10)
      for (String file : new String[] {"model.safetensors", "optimizer.safetensors"})
        assertEquals(
            0.0,
            DistributedRunTest.maxDifference(
                a.resolve("checkpoint-" + step + "/" + file),
                b.resolve("checkpoint-" + step + "/" + file)),
            file + " at step " + step);
  }

  @Test
  void thePipelinedUpdateGivesTheUnpipelinedRunBitForBit(@TempDir Path tmp) throws Exception {
    Path on = tmp.resolve("on"), off = tmp.resolve("off"), log = tmp.resolve("on.log");
    run(config(off, STEPS, 4, OFFLOAD + OFF), tmp.resolve("off.log"));
    run(config(on, STEPS, 4, OFFLOAD), log);
    assertTrue(
        Files.readString(log).contains("the update overlaps the next forward"),
        () -> DistributedRunTest.read(log));
    assertSameRun(off, on, STEPS);
  }

  /**
   * With the explicit backward, which now enters each stage as the recomputing backward does, the
   * next step's forward waits for each unit's new weights alone (before, the trainer waited for the
   * whole update first): the same run bit for bit.
   */
  @Test
  void withTheExplicitBackwardThePipelinedUpdateGivesTheSameRun(@TempDir Path tmp)
      throws Exception {
    String explicit = OFFLOAD + "explicit_backward: true\n";
    Path on = tmp.resolve("on"), off = tmp.resolve("off");
    run(config(off, 10, 4, explicit + OFF), tmp.resolve("off.log"));
    run(config(on, 10, 4, explicit), tmp.resolve("on.log"));
    assertSameRun(off, on, 10);
  }

  @Test
  @Tag("slow")
  void withAccumulationOnlyTheLastMicroStepStartsTheUpdateAndTheRunIsTheSame(@TempDir Path tmp)
      throws Exception {
    Path on = tmp.resolve("on"), off = tmp.resolve("off");
    String accum = OFFLOAD + "gradient_accumulation_steps: 2\n";
    run(config(off, STEPS, 2, accum + OFF), tmp.resolve("off.log"));
    run(config(on, STEPS, 2, accum), tmp.resolve("on.log"));
    assertSameRun(off, on, STEPS);
  }

  @Test
  @Tag("slow")
  void withZeroOnTwoProcessesThePipelinedUpdateGivesTheUnpipelinedRun(@TempDir Path tmp)
      throws Exception {
    for (String zero : new String[] {"zero_stage: 1\n", "zero_stage: 2\noverlap_comm: true\n"}) {
      Path on = tmp.resolve("on" + zero.charAt(12)), off = tmp.resolve("off" + zero.charAt(12));
      String accum = OFFLOAD + zero + "gradient_accumulation_steps: 2\n";
      DistributedRunTest.runOnTwoProcesses(
          config(off, STEPS, 1, accum + OFF), tmp.resolve("f.log"));
      DistributedRunTest.runOnTwoProcesses(config(on, STEPS, 1, accum), tmp.resolve("n.log"));
      assertEquals(STEPS, losses(on).size());
      assertEquals(losses(off), losses(on), zero);
      assertEquals(0.0, DistributedRunTest.maxWeightDifference(off, on), zero);
      for (int step = 10; step <= STEPS; step += 10)
        assertEquals(
            0.0,
            DistributedRunTest.maxDifference(
                off.resolve("checkpoint-" + step + "/model.safetensors"),
                on.resolve("checkpoint-" + step + "/model.safetensors")),
            zero + " step " + step);
    }
  }
}
