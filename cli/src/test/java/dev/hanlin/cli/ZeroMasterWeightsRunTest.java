package dev.hanlin.cli;

import static dev.hanlin.cli.DistributedRunTest.freePort;
import static dev.hanlin.cli.DistributedRunTest.launch;
import static dev.hanlin.cli.DistributedRunTest.losses;
import static dev.hanlin.cli.DistributedRunTest.read;
import static dev.hanlin.cli.DistributedRunTest.trainMetric;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code master_weights} (bf16 compute, fp32 masters) with {@code zero_stage} 1 and 2 on the CPU
 * with Gloo, every rank a child JVM started by bin/launch: each rank keeps the masters and AdamW
 * state of the parameters it owns, updates them, and the owners broadcast the new bf16 weights.
 * That is DDP's update with master weights, so on the same ranks the losses, gradient norms,
 * checkpoints (the fp32 masters, gathered from their owners) and export are DDP's bit for bit
 * (without clipping; with it, ZeRO-1 still is, ZeRO-2's norm is summed in another order);
 * checkpoints resume between stages 0, 1, 2 and 3. Against one process the ranks' bf16 gradients
 * are summed in another order (DDP's as well), so the losses agree to bf16's precision there.
 */
class ZeroMasterWeightsRunTest {
  static final int STEPS = 20;

  /**
   * The runs are without clipping unless {@code extra} sets max_grad_norm: ZeRO-2's global gradient
   * norm sums the owners' squared norms, where DDP takes the norm of every tensor's norm, so with
   * clipping the scale differs in its last bit, which bf16 weights then amplify (~1e-4 after 20
   * steps).
   */
  static final String MASTER = "bf16: true\nmaster_weights: true\n";

  @TempDir static Path shared;
  static Path data, ddp;

  /**
   * The tiny model with master weights for {@link #STEPS} steps of {@code batch} blocks a rank,
   * saved every 10; then {@code extra}.
   */
  static Path config(Path dir, int batch, String extra) throws IOException {
    return TinyRun.small(
        dir,
        data,
        STEPS,
        batch,
        """
        per_device_eval_batch_size: 4
        learning_rate: 3.0e-3
        weight_decay: 0.1
        warmup_steps: 2
        max_eval_batches: 1
        save_steps: 10
        logging_steps: 5
        device: cpu
        gradient_checkpointing: true
        dist_timeout_seconds: 30
        %s%s"""
            .formatted(
                MASTER, extra.contains("max_grad_norm") ? extra : "max_grad_norm: 0\n" + extra));
  }

  /** Runs {@code yaml} on {@code n} processes of this host; it must exit 0. */
  static void run(int n, Path yaml, Path log) throws Exception {
    Process p = launch(yaml, log, "--nproc-per-node", "" + n, "--master-port", "" + freePort());
    assertEquals(0, DistributedRunTest.finish(p, log), () -> read(log));
  }

  @BeforeAll
  static void ddpWithMasterWeights() throws Exception {
    data = shared.resolve("data");
    ddp = shared.resolve("ddp");
    run(2, config(ddp, 3, ""), shared.resolve("ddp.log"));
    assertEquals(STEPS, losses(ddp).size());
  }

  /**
   * Two runs were the same bit for bit: losses and every file of {@code files}; the reported
   * gradient norms too, or with ZeRO-2 ({@code zero2}) to float rounding, as it sums the owners'
   * squared norms where DDP takes the norm of every tensor's norm.
   */
  static void assertSameRun(Path want, Path got, List<String> files) throws IOException {
    assertSameRun(want, got, files, 0);
  }

  /** As {@link #assertSameRun(Path, Path, List)} from step {@code from} on (a resumed run). */
  static void assertSameRun(Path want, Path got, List<String> files, int from) throws IOException {
    List<Double> a = trainMetric(want, "grad_norm"), b = trainMetric(got, "grad_norm");
    List<Double> la = losses(want), lb = losses(got);
    assertEquals(la.size(), lb.size(), got + ": steps");
    assertEquals(la.subList(from, la.size()), lb.subList(from, lb.size()), got.toString());
    a = a.subList(from, a.size());
    b = b.subList(from, b.size());
    boolean zero2 =
        Files.readString(got.resolveSibling(got.getFileName() + ".yaml")).contains("zero_stage: 2");
    if (!zero2) assertEquals(a, b, got.toString());
    else
      for (int i = 0; i < a.size(); i++)
        assertEquals(a.get(i), b.get(i), 1e-6 * a.get(i), got + ": grad norm at " + (i + 1));
    for (String f : files)
      assertArrayEquals(
          Files.readAllBytes(want.resolve(f)), Files.readAllBytes(got.resolve(f)), got + ": " + f);
  }

  /** The checkpoint holds every fp32 master (gathered from the owners), the export bf16. */
  static final List<String> MODEL_FILES =
      List.of("checkpoint-10/model.safetensors", "checkpoint-20/model.safetensors");

  /**
   * ZeRO-2 with master weights on 2 processes is DDP's run with master weights bit for bit, its
   * checkpoints the same fp32 masters; its step-10 checkpoint resumes under ZeRO-1 to the same end.
   */
  @Test
  void zeroStage2KeepsEachRanksMastersAndTrainsAsDdpBitForBit(@TempDir Path tmp) throws Exception {
    Path zero2 = tmp.resolve("zero2");
    run(2, config(zero2, 3, "zero_stage: 2\n"), tmp.resolve("zero2.log"));
    assertSameRun(ddp, zero2, MODEL_FILES);
    assertArrayEquals(
        Files.readAllBytes(ddp.resolve("model.safetensors")),
        Files.readAllBytes(zero2.resolve("model.safetensors")),
        "the bf16 export");
    try (SafetensorsFile f =
        SafetensorsFile.open(zero2.resolve("checkpoint-10/model.safetensors"))) {
      assertEquals(DType.F32, f.info("lm_head.weight").dtype());
    }
    DistributedRunTest.assertShardedOptimizerFiles(zero2.resolve("checkpoint-10"));

    Path zero1 = tmp.resolve("zero1");
    String from = "resume_from_checkpoint: " + zero2.resolve("checkpoint-10") + "\n";
    run(2, config(zero1, 3, "zero_stage: 1\n" + from), tmp.resolve("zero1.log"));
    assertTrue(read(tmp.resolve("zero1.log")).contains("resuming from"));
    assertSameRun(ddp, zero1, List.of("checkpoint-20/model.safetensors"), 10);

    // the finished run resumed: every rank gathers the masters for the main rank's export (it
    // waited for the others until the timeout when only the main rank asked for them)
    Path again = tmp.resolve("again"), log = tmp.resolve("again.log");
    String last = "resume_from_checkpoint: " + zero2.resolve("checkpoint-20") + "\n";
    run(2, config(again, 3, "zero_stage: 2\n" + last), log);
    assertTrue(read(log).contains("the run had finished"), () -> read(log));
    assertArrayEquals(
        Files.readAllBytes(ddp.resolve("model.safetensors")),
        Files.readAllBytes(again.resolve("model.safetensors")),
        "the bf16 export of the resumed finished run");
  }

  /** ZeRO-1 from the start, bit for bit DDP's run too. */
  @Test
  @Tag("slow")
  void zeroStage1TrainsAsDdpBitForBit(@TempDir Path tmp) throws Exception {
    Path zero1 = tmp.resolve("zero1");
    run(2, config(zero1, 3, "zero_stage: 1\n"), tmp.resolve("zero1.log"));
    assertSameRun(ddp, zero1, MODEL_FILES);
  }

  /**
   * With clipping (max_grad_norm 1): ZeRO-1 sees every averaged gradient, as DDP, and stays DDP's
   * run bit for bit; ZeRO-2's norm sums the owners' shares in another order, so it agrees to bf16's
   * precision.
   */
  @Test
  @Tag("slow")
  void withClippingZeroStage1IsDdpBitForBitAndStage2Close(@TempDir Path tmp) throws Exception {
    String clip = "max_grad_norm: 1.0\n";
    Path d = tmp.resolve("d"), z1 = tmp.resolve("z1"), z2 = tmp.resolve("z2");
    run(2, config(d, 3, clip), tmp.resolve("d.log"));
    run(2, config(z1, 3, clip + "zero_stage: 1\n"), tmp.resolve("z1.log"));
    run(2, config(z2, 3, clip + "zero_stage: 2\n"), tmp.resolve("z2.log"));
    assertSameRun(d, z1, MODEL_FILES);
    double z2VsDdp = lossDifference(d, z2, 0);
    System.out.printf("master_weights with clipping: 2-proc ZeRO-2 vs DDP: %.3g%n", z2VsDdp);
    assertTrue(z2VsDdp < 1e-3, "ZeRO-2 with clipping: " + z2VsDdp);
  }

  /** The largest difference between two runs' losses from step {@code from} on. */
  static double lossDifference(Path a, Path b, int from) throws IOException {
    List<Double> x = losses(a), y = losses(b);
    assertEquals(x.size(), y.size(), b + ": steps");
    double max = 0;
    for (int i = from; i < x.size(); i++) max = Math.max(max, Math.abs(x.get(i) - y.get(i)));
    return max;
  }

  /**
   * 3 processes (2 blocks each, the global batch of 6): ZeRO-1 is 3-process DDP's run bit for bit
   * (the same reducer, the same owners' update); ZeRO-2 sums the bf16 gradients onto each owner and
   * then divides, where DDP's reducer averages as it sums, so on 3 ranks it agrees to bf16's
   * precision. Against one process, every data-parallel bf16 run differs by bf16 rounding of each
   * rank's gradients (measured: 3-process DDP ~4e-3 in the loss after 20 steps at lr 3e-3), and
   * ZeRO-1/2 stay within twice DDP's own difference.
   */
  @Test
  @Tag("slow")
  void threeProcessesWithZeroStages1And2AreDdpsRun(@TempDir Path tmp) throws Exception {
    Path one = tmp.resolve("one"), d3 = tmp.resolve("d3");
    Path z1 = tmp.resolve("z1"), z2 = tmp.resolve("z2");
    run(1, config(one, 6, ""), tmp.resolve("one.log"));
    run(3, config(d3, 2, ""), tmp.resolve("d3.log"));
    run(3, config(z1, 2, "zero_stage: 1\n"), tmp.resolve("z1.log"));
    run(3, config(z2, 2, "zero_stage: 2\n"), tmp.resolve("z2.log"));
    assertSameRun(d3, z1, MODEL_FILES);
    double ddpVsOne = lossDifference(one, d3, 0), z2VsDdp = lossDifference(d3, z2, 0);
    double z1VsOne = lossDifference(one, z1, 0), z2VsOne = lossDifference(one, z2, 0);
    System.out.printf(
        "master_weights, max loss difference over %d steps on 3 processes: DDP vs 1: %.3g;"
            + " ZeRO-1 vs 1: %.3g; ZeRO-2 vs 1: %.3g; ZeRO-2 vs DDP: %.3g%n",
        STEPS, ddpVsOne, z1VsOne, z2VsOne, z2VsDdp);
    assertTrue(z2VsDdp < 2e-3, "ZeRO-2 vs DDP on 3 processes: " + z2VsDdp);
    assertTrue(z2VsOne <= 2 * ddpVsOne, "ZeRO-2 vs one: " + z2VsOne + ", DDP's " + ddpVsOne);
  }

  /**
   * Checkpoints with master weights resume between the stages: ZeRO-2's (2 ranks) under ZeRO-3 on 3
   * and under stage 0 on one process; ZeRO-3's (3 ranks) under ZeRO-2 on 2, which then continues as
   * DDP's run to bf16's precision.
   */
  @Test
  @Tag("slow")
  void checkpointsResumeBetweenStages0To3(@TempDir Path tmp) throws Exception {
    Path zero2 = tmp.resolve("zero2");
    run(2, config(zero2, 3, "zero_stage: 2\nstop_after_steps: 10\n"), tmp.resolve("zero2.log"));
    String from2 = "resume_from_checkpoint: " + zero2.resolve("checkpoint-10") + "\n";
    Path z3 = tmp.resolve("z3"), s0 = tmp.resolve("s0"), back = tmp.resolve("back");
    run(3, config(z3, 2, "zero_stage: 3\n" + from2), tmp.resolve("z3.log"));
    run(1, config(s0, 6, from2), tmp.resolve("s0.log"));
    String from3 = "resume_from_checkpoint: " + z3.resolve("checkpoint-20") + "\n";
    // ZeRO-3's final checkpoint under ZeRO-2: nothing is left to train, it evaluates and exports
    run(2, config(back, 3, "zero_stage: 2\n" + from3), tmp.resolve("back.log"));
    assertTrue(read(tmp.resolve("back.log")).contains("the run had finished"));
    double z3VsDdp = lossDifference(ddp, z3, 10), s0VsDdp = lossDifference(ddp, s0, 10);
    double exported =
        DistributedRunTest.maxDifference(
            z3.resolve("model.safetensors"), back.resolve("model.safetensors"));
    System.out.printf(
        "master_weights resumed from ZeRO-2's step 10, max loss difference to 2-proc DDP: ZeRO-3"
            + " on 3: %.3g, stage 0 on 1: %.3g; ZeRO-3's checkpoint re-exported under ZeRO-2:"
            + " %.3g%n",
        z3VsDdp, s0VsDdp, exported);
    for (double d : new double[] {z3VsDdp, s0VsDdp}) assertTrue(d < 1e-3, "resumed: " + d);
    assertEquals(0.0, exported, "ZeRO-3's masters, exported under ZeRO-2");
  }
}
