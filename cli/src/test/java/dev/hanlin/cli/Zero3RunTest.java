package dev.hanlin.cli;

import static dev.hanlin.cli.DistributedRunTest.finish;
import static dev.hanlin.cli.DistributedRunTest.freePort;
import static dev.hanlin.cli.DistributedRunTest.launch;
import static dev.hanlin.cli.DistributedRunTest.losses;
import static dev.hanlin.cli.DistributedRunTest.maxDifference;
import static dev.hanlin.cli.DistributedRunTest.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ZeRO-3 (zero_stage 3) on the CPU with Gloo, every rank a child JVM started by bin/launch: 1, 2
 * and 3 processes (the last with accumulation) give the losses of one unsharded process over the
 * same global batch of 6 blocks over 20 steps; each rank writes only its shards; a ZeRO-3
 * checkpoint resumes on another world size and under zero_stage 0, 1 and 2, and theirs under 3; the
 * export equals the unsharded run's and loads; a killed rank ends the run. The default suite runs
 * the 2-process run with its unsharded resume and the kill; the rest is tagged slow.
 */
class Zero3RunTest {
  static final int STEPS = 20;
  static final String ZERO3 = "zero_stage: 3\n";
  @TempDir static Path shared;
  static Path data, reference;

  /**
   * The tiny model of {@link DistributedRunTest} for {@code steps} steps of {@code batch} blocks a
   * rank, saved every {@code save} steps, recomputing backward, weight decay on.
   */
  static Path config(Path dir, int steps, int batch, int save, String extra) throws IOException {
    return TinyRun.small(
        dir,
        data,
        steps,
        batch,
        """
        per_device_eval_batch_size: 4
        learning_rate: 3.0e-3
        weight_decay: 0.1
        warmup_steps: 2
        max_eval_batches: 1
        save_steps: %d
        logging_steps: 5
        device: cpu
        gradient_checkpointing: true
        %s%s
        """
            .formatted(
                save,
                extra.contains("dist_timeout_seconds") ? "" : "dist_timeout_seconds: 30\n",
                extra));
  }

  static Path config(Path dir, int batch, String extra) throws IOException {
    return config(dir, STEPS, batch, 10, extra);
  }

  /** Runs {@code yaml} on {@code n} processes of this host; it must exit 0. */
  static void run(int n, Path yaml, Path log) throws Exception {
    Process p = launch(yaml, log, "--nproc-per-node", "" + n, "--master-port", "" + freePort());
    assertEquals(0, finish(p, log), () -> read(log));
  }

  @BeforeAll
  static void referenceRun() throws Exception {
    data = shared.resolve("data");
    reference = shared.resolve("one");
    run(1, config(reference, 6, ""), shared.resolve("one.log"));
    assertEquals(STEPS, losses(reference).size());
  }

  /** {@code out}'s losses are the reference's from step {@code from} on, within {@code tol}. */
  static void assertLosses(Path out, int from, double tol) throws IOException {
    List<Double> want = losses(reference), got = losses(out);
    assertEquals(want.size(), got.size(), "steps");
    for (int i = from; i < want.size(); i++)
      assertEquals(want.get(i), got.get(i), tol, "loss at step " + (i + 1) + " of " + out);
  }

  static double exportDifference(Path out) throws IOException {
    return maxDifference(reference.resolve("model.safetensors"), out.resolve("model.safetensors"));
  }

  /** The files of a ZeRO-3 checkpoint of 2 ranks: each rank's shards, nothing whole. */
  static void assertPerRankFiles(Path ck) {
    for (String f :
        List.of(
            "model-rank-0-of-2.safetensors",
            "model-rank-1-of-2.safetensors",
            "optimizer-rank-0-of-2.safetensors",
            "optimizer-rank-1-of-2.safetensors",
            "zero3-layout.json",
            "config.json")) assertTrue(Files.exists(ck.resolve(f)), f);
    assertFalse(Files.exists(ck.resolve("model.safetensors")), "nothing gathered");
    assertFalse(Files.exists(ck.resolve("optimizer.safetensors")), "nothing gathered");
  }

  /**
   * The export, gathered unit by unit, is an HF folder that loads, with the reference's weights.
   */
  static void assertExportLoads(Path out) throws IOException {
    // clipping's global norm sums the shards' norms in another order: last-bit differences grow
    assertTrue(exportDifference(out) < 1e-4, out + ": " + exportDifference(out));
    LlamaModel m = HfCheckpoint.load(out, DType.F32, Device.CPU);
    LlamaModel r = HfCheckpoint.load(reference, DType.F32, Device.CPU);
    assertEquals(r.weights().keySet(), m.weights().keySet());
    for (var e : r.weights().entrySet()) {
      Tensor w = m.weights().get(e.getKey());
      assertArrayEquals(e.getValue().shape(), w.shape(), e.getKey());
    }
  }

  /**
   * Two ZeRO-3 processes of 3 blocks give the run of one unsharded process of 6; each rank writes
   * its shards, and the step-10 checkpoint resumes on one process without ZeRO.
   */
  @Test
  void twoProcessesGiveTheRunOfOneAndTheirCheckpointResumesUnsharded(@TempDir Path tmp)
      throws Exception {
    Path two = tmp.resolve("two");
    run(2, config(two, 3, ZERO3), tmp.resolve("two.log"));
    assertLosses(two, 0, 1e-5);
    assertPerRankFiles(two.resolve("checkpoint-10"));
    assertExportLoads(two);
    Path one = tmp.resolve("one");
    String from = "resume_from_checkpoint: " + two.resolve("checkpoint-10") + "\n";
    run(1, config(one, 6, from), tmp.resolve("one.log"));
    assertTrue(read(tmp.resolve("one.log")).contains("resuming from"));
    assertLosses(one, 10, 1e-5);
  }

  /** One process, and three with 2 accumulated micro-batches of 1 block, as one unsharded. */
  @Test
  @Tag("slow")
  void oneAndThreeProcessesWithAccumulationGiveTheRunOfOne(@TempDir Path tmp) throws Exception {
    Path one = tmp.resolve("one"), three = tmp.resolve("three");
    run(1, config(one, 6, ZERO3), tmp.resolve("one.log"));
    run(3, config(three, 1, ZERO3 + "gradient_accumulation_steps: 2"), tmp.resolve("three.log"));
    for (Path out : List.of(one, three)) {
      assertLosses(out, 0, 1e-5);
      assertExportLoads(out);
    }
  }

  /**
   * Without clipping nothing depends on summation order across units: one ZeRO-3 process exports
   * the same bytes as the unsharded process.
   */
  @Test
  @Tag("slow")
  void withoutClippingOneProcessExportsTheSameBytes(@TempDir Path tmp) throws Exception {
    Path plain = tmp.resolve("plain"), zero = tmp.resolve("zero");
    String noClip = "max_grad_norm: 0\n";
    run(1, config(plain, 4, 6, 0, noClip), tmp.resolve("plain.log"));
    run(1, config(zero, 4, 6, 0, noClip + ZERO3), tmp.resolve("zero.log"));
    assertEquals(losses(plain), losses(zero));
    assertArrayEquals(
        Files.readAllBytes(plain.resolve("model.safetensors")),
        Files.readAllBytes(zero.resolve("model.safetensors")));
  }

  /**
   * The 2-rank ZeRO-3 checkpoint at step 10 resumes on 3 ZeRO-3 processes, and the unsharded one's
   * under ZeRO-3 on 2; each continues the reference run.
   */
  @Test
  @Tag("slow")
  void checkpointsResumeAcrossWorldSizes(@TempDir Path tmp) throws Exception {
    Path z = tmp.resolve("z");
    run(2, config(z, 3, ZERO3 + "stop_after_steps: 10"), tmp.resolve("z.log"));
    String fromZero3 = "resume_from_checkpoint: " + z.resolve("checkpoint-10") + "\n";
    String fromPlain = "resume_from_checkpoint: " + reference.resolve("checkpoint-10") + "\n";
    Path b = tmp.resolve("b");
    run(3, config(b, 2, ZERO3 + fromZero3), tmp.resolve("b.log"));
    assertLosses(b, 10, 1e-5);
    Path c = tmp.resolve("c");
    run(2, config(c, 3, ZERO3 + fromPlain), tmp.resolve("c.log"));
    assertLosses(c, 10, 1e-5);
  }

  /** ZeRO-3's checkpoint under zero_stage 1 and 2, and a ZeRO-2 checkpoint (per-rank) under 3. */
  @Test
  @Tag("slow")
  void checkpointsResumeUnderZeroStages1And2AndBack(@TempDir Path tmp) throws Exception {
    Path z = tmp.resolve("z");
    run(3, config(z, 2, ZERO3 + "stop_after_steps: 10"), tmp.resolve("z.log"));
    String from = "resume_from_checkpoint: " + z.resolve("checkpoint-10") + "\n";
    Path s1 = tmp.resolve("s1"), s2 = tmp.resolve("s2");
    run(2, config(s1, 3, "zero_stage: 1\n" + from), tmp.resolve("s1.log"));
    assertLosses(s1, 10, 1e-5);
    run(2, config(s2, STEPS, 3, 15, "zero_stage: 2\n" + from), tmp.resolve("s2.log"));
    assertLosses(s2, 10, 1e-5);
    Path back = tmp.resolve("back");
    String from2 = "resume_from_checkpoint: " + s2.resolve("checkpoint-15") + "\n";
    run(3, config(back, 2, ZERO3 + from2), tmp.resolve("back.log"));
    assertLosses(back, 15, 1e-5);
  }

  /**
   * bf16 compute with fp32 masters that are ZeRO-3's shards. Without clipping one process is the
   * unsharded master-weights run bit for bit (with clipping, the norm's summation order moves a
   * master by a last bit, which bf16 then amplifies); two processes reduce-scatter in float32 where
   * DDP all-reduces bf16 gradients, so they agree with one process to bf16's precision (DDP's two
   * processes differ from one by ~1e-4 as well). Their checkpoint resumes on one process.
   */
  @Test
  @Tag("slow")
  void masterWeightsAreTheShards(@TempDir Path tmp) throws Exception {
    String mw = "bf16: true\nmaster_weights: true\nmax_grad_norm: 0\n";
    Path ref = tmp.resolve("ref"), one = tmp.resolve("one"), two = tmp.resolve("two");
    run(1, config(ref, 10, 6, 5, mw), tmp.resolve("ref.log"));
    run(1, config(one, 10, 6, 5, mw + ZERO3), tmp.resolve("one.log"));
    run(2, config(two, 10, 3, 5, mw + ZERO3), tmp.resolve("two.log"));
    assertTrue(read(tmp.resolve("two.log")).contains("master_weights"), "bf16 compute");
    List<Double> want = losses(ref);
    assertEquals(want, losses(one));
    assertArrayEquals(
        Files.readAllBytes(ref.resolve("model.safetensors")),
        Files.readAllBytes(one.resolve("model.safetensors")));
    for (int i = 0; i < want.size(); i++)
      assertEquals(want.get(i), losses(two).get(i), 5e-4, "two processes, step " + (i + 1));
    // the 1-process ZeRO-3 checkpoint's shards are the masters: unsharded, it continues exactly
    Path r = tmp.resolve("r");
    String from = "resume_from_checkpoint: " + one.resolve("checkpoint-5") + "\n";
    run(1, config(r, 10, 6, 5, mw + from), tmp.resolve("r.log"));
    for (int i = 5; i < want.size(); i++)
      assertEquals(want.get(i), losses(r).get(i), 1e-6, "resumed, step " + (i + 1));
  }

  @Test
  void aKilledRankEndsTheRunWithAnErrorNamingIt(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("kill"), log = tmp.resolve("kill.log");
    Path yaml = config(out, 100_000, 3, 0, ZERO3 + "dist_timeout_seconds: 10");
    Process p = launch(yaml, log, "--nproc-per-node", "2", "--master-port", "" + freePort());
    try {
      long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
      while (p.isAlive() && !read(log).contains("step 5/") && System.nanoTime() < deadline)
        Thread.sleep(100);
      assertTrue(p.isAlive(), () -> "the run did not start: " + read(log));
      long[] pids = new long[2];
      Matcher m = Pattern.compile("rank (\\d)/2 \\(local \\d\\) is pid (\\d+)").matcher(read(log));
      while (m.find()) pids[Integer.parseInt(m.group(1))] = Long.parseLong(m.group(2));
      assertNotEquals(0, pids[1], () -> read(log));
      ProcessHandle.of(pids[1]).orElseThrow().destroyForcibly(); // SIGKILL
      assertTrue(p.waitFor(60, TimeUnit.SECONDS), () -> "still running: " + read(log));
      assertNotEquals(0, p.exitValue());
      String text = read(log);
      assertTrue(text.contains("[launch] rank 1 exited with status 137"), text);
      assertFalse(ProcessHandle.of(pids[0]).map(ProcessHandle::isAlive).orElse(false), text);
    } finally {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
    }
  }
}
