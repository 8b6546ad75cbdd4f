package dev.hanlin.cli;

import static dev.hanlin.cli.DistributedRunTest.losses;
import static dev.hanlin.cli.DistributedRunTest.maxDifference;
import static dev.hanlin.cli.DistributedRunTest.read;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two-process CPU runs (Gloo, bin/launch) of ZeRO-2's bucketed, overlapped reduce ({@code
 * overlap_comm}) and of {@code offload_optimizer: cpu} with ZeRO: bucketing changes no bit of the
 * run, and offloading with each rank's share of the masters trains as offloading with every master
 * on every rank, its checkpoints gathering the same fp32 masters.
 */
class ZeroOverlapOffloadRunTest {
  static final int STEPS = 6;
  static final String ZERO2 = "zero_stage: 2\ngradient_checkpointing: true\n";
  @TempDir static Path shared;

  static Path config(Path dir, int steps, int batch, String extra) throws IOException {
    return TinyRun.small(
        dir,
        shared.resolve("data"),
        steps,
        batch,
        """
        learning_rate: 3.0e-3
        warmup_steps: 2
        max_eval_batches: 1
        save_steps: 3
        logging_steps: 1
        device: cpu
        dist_timeout_seconds: 30
        %s
        """
            .formatted(extra));
  }

  @Test
  void overlappedBucketsGiveTheLossesAndWeightsOfThePerWeightReduceBitForBit(@TempDir Path tmp)
      throws Exception {
    Path plain = tmp.resolve("plain"), bucketed = tmp.resolve("bucketed");
    String accum = "gradient_accumulation_steps: 2\n";
    DistributedRunTest.runOnTwoProcesses(
        config(plain, STEPS, 1, ZERO2 + accum), tmp.resolve("plain.log"));
    // buckets of 3000 elements: several per block on this model, so several in flight at once
    DistributedRunTest.runOnTwoProcesses(
        config(bucketed, STEPS, 1, ZERO2 + accum + "overlap_comm: true\nreduce_bucket_size: 3000"),
        tmp.resolve("bucketed.log"));
    assertEquals(STEPS, losses(plain).size());
    assertEquals(losses(plain), losses(bucketed));
    assertEquals(
        DistributedRunTest.trainMetric(plain, "grad_norm"),
        DistributedRunTest.trainMetric(bucketed, "grad_norm"));
    assertEquals(0.0, DistributedRunTest.maxWeightDifference(plain, bucketed));
  }

  /**
   * Offload with ZeRO-2 (each rank keeps masters and AdamW state for its share) against offload
   * with DDP (every rank keeps every master), both on two processes with the same batches: the same
   * losses, and the ZeRO run's checkpoint gathers the same masters. Its checkpoint then resumes,
   * with ZeRO-1, to the same end.
   */
  @Test
  @Tag("slow")
  void offloadWithZeroKeepsEachRanksShareAndGathersItsCheckpoints(@TempDir Path tmp)
      throws Exception {
    String offload = "bf16: true\noffload_optimizer: cpu\ngradient_checkpointing: true\n";
    Path ddp = tmp.resolve("ddp"), zero = tmp.resolve("zero"), log = tmp.resolve("zero.log");
    DistributedRunTest.runOnTwoProcesses(config(ddp, STEPS, 2, offload), tmp.resolve("ddp.log"));
    DistributedRunTest.runOnTwoProcesses(
        config(zero, STEPS, 2, offload + "zero_stage: 2\noverlap_comm: true"), log);
    assertTrue(read(log).contains("offload_optimizer: cpu"), () -> read(log));
    DistributedRunTest.assertLossesMatch(losses(ddp), losses(zero), 0);
    for (int step : new int[] {3, 6})
      assertTrue(
          maxDifference(
                  ddp.resolve("checkpoint-" + step + "/model.safetensors"),
                  zero.resolve("checkpoint-" + step + "/model.safetensors"))
              < 1e-6,
          "the gathered fp32 masters at step " + step);
    DistributedRunTest.assertShardedOptimizerFiles(zero.resolve("checkpoint-3"));

    Path resumed = tmp.resolve("resumed");
    String from = "resume_from_checkpoint: " + zero.resolve("checkpoint-3") + "\n";
    DistributedRunTest.runOnTwoProcesses(
        config(resumed, STEPS, 2, offload + "zero_stage: 1\n" + from), tmp.resolve("r.log"));
    DistributedRunTest.assertLossesMatch(losses(ddp), losses(resumed), 3);
    assertTrue(Files.exists(resumed.resolve("model.safetensors")));
  }
}
