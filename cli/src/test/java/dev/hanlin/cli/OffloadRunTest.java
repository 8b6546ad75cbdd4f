package dev.hanlin.cli;

import static dev.hanlin.cli.PretrainRunTest.losses;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code offload_optimizer: cpu} on whole CPU runs: the same math as {@code master_weights} (bf16
 * model, fp32 masters, the same fused AdamW kernel), so the losses and gradient norms are the same
 * bit for bit; its checkpoints resume exactly, and a run resumes across offload on and off (those
 * two, 4 more runs, are tagged slow).
 */
class OffloadRunTest {
  static final int STEPS = 20;
  static final String MASTER = "bf16: true\nmaster_weights: true";
  static final String OFFLOAD = "bf16: true\noffload_optimizer: cpu";
  @TempDir static Path shared;
  static Path data, masters;

  static Path config(Path dir, String extra) throws IOException {
    return TinyRun.small(
        dir,
        data,
        STEPS,
        4,
        """
        learning_rate: 3.0e-3
        warmup_steps: 3
        max_eval_batches: 1
        logging_steps: 1
        device: cpu
        %s
        """
            .formatted(extra));
  }

  static void run(Path yaml, Path log) throws Exception {
    int rc = TinyRun.finish(TinyRun.pretrain(yaml, log), log, 5);
    assertEquals(0, rc, () -> DistributedRunTest.read(log));
  }

  /** Runs {@code first} for 8 steps, then the same run under {@code then} to the end. */
  static Path stopAndResume(Path tmp, String name, String first, String then) throws Exception {
    Path out = tmp.resolve(name), log = tmp.resolve(name + ".log");
    run(config(out, first + "\nstop_after_steps: 8"), log);
    run(config(out, then), log);
    assertTrue(Files.readString(log).contains("resuming from"), () -> DistributedRunTest.read(log));
    return out;
  }

  @BeforeAll
  static void masterWeightsRun() throws Exception {
    data = shared.resolve("data");
    masters = shared.resolve("masters");
    run(config(masters, MASTER), shared.resolve("masters.log"));
    assertEquals(STEPS, losses(masters).size());
  }

  @Test
  void offloadGivesTheLossesOfMasterWeightsBitForBit(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("offload"), log = tmp.resolve("offload.log");
    run(config(out, OFFLOAD), log);
    assertTrue(Files.readString(log).contains("offload_optimizer: cpu"), Files.readString(log));
    assertEquals(losses(masters), losses(out)); // "step:loss:grad_norm" as written
    // the checkpoint holds the fp32 masters, the export bf16
    try (var f =
        dev.hanlin.torch.safetensors.SafetensorsFile.open(
            out.resolve("checkpoint-" + STEPS + "/model.safetensors"))) {
      assertEquals(dev.hanlin.torch.DType.F32, f.info("model.norm.weight").dtype());
    }
    assertEquals(0.0, DistributedRunTest.maxWeightDifference(masters, out));
  }

  @Test
  @Tag("slow")
  void anOffloadedRunStoppedAndResumedEqualsOneUninterrupted(@TempDir Path tmp) throws Exception {
    Path out = stopAndResume(tmp, "resumed", OFFLOAD, OFFLOAD);
    assertEquals(losses(masters), losses(out));
  }

  /** SIGKILL at a random step after the first checkpoint (step 4); the resume ends the same. */
  @Test
  @Tag("slow")
  void anOffloadedRunKilledAtARandomStepResumesBitwise(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("killed"), log = tmp.resolve("killed.log");
    Path yaml = config(out, OFFLOAD + "\nsave_steps: 4");
    long killAt = 5 + new java.util.Random().nextInt(10);
    Process p = TinyRun.pretrain(yaml, log);
    while (p.isAlive() && PretrainRunTest.lastStep(out) < killAt) Thread.sleep(5);
    p.destroyForcibly(); // SIGKILL
    p.waitFor();
    run(yaml, log);
    assertTrue(Files.readString(log).contains("resuming from"), () -> DistributedRunTest.read(log));
    assertEquals(losses(masters), losses(out), "killed after step " + killAt);
  }

  @Test
  @Tag("slow")
  void aRunResumesAcrossOffloadOnAndOff(@TempDir Path tmp) throws Exception {
    List<String> expected = losses(masters);
    assertEquals(expected, losses(stopAndResume(tmp, "on-off", OFFLOAD, MASTER)));
    assertEquals(expected, losses(stopAndResume(tmp, "off-on", MASTER, OFFLOAD)));
  }
}
