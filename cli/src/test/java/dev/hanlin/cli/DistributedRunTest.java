package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import dev.hanlin.torch.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.TCPStore;
import org.bytedeco.pytorch.TCPStoreOptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data-parallel runs on the CPU with Gloo, every rank a child JVM started by bin/launch over
 * 127.0.0.1: the same global batch on 1 and 2 processes gives the same losses and weights (also
 * with ZeRO-1 and ZeRO-2), a run resumes with a different world size and zero_stage (here after two
 * simulated nodes, and from per-rank and whole optimizer files), and a rank that is killed or hangs
 * ends the run with an error and a non-zero exit.
 */
class DistributedRunTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final int STEPS = 6;
  @TempDir static Path shared;
  static Path data, reference;

  /** A tiny model on short blocks; {@code batch} blocks per rank. */
  static Path config(Path dir, int steps, int batch, String extra) throws IOException {
    return config(dir, data, steps, batch, extra);
  }

  /** As above, with the prepared data in (or to be prepared into) {@code data}. */
  static Path config(Path dir, Path data, int steps, int batch, String extra) throws IOException {
    return TinyRun.small(
        dir,
        data,
        steps,
        batch,
        """
        per_device_eval_batch_size: 4
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

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /** {@code bin/launch [launchArgs] -- --mode pretrain --config yaml}, output to {@code log}. */
  static Process launch(Path yaml, Path log, String... launchArgs) throws IOException {
    return launch(yaml, log, Map.of(), launchArgs);
  }

  static Process launch(Path yaml, Path log, Map<String, String> env, String... launchArgs)
      throws IOException {
    List<String> cmd = new ArrayList<>(List.of("bash", TinyRun.repo() + "/bin/launch"));
    cmd.addAll(List.of(launchArgs));
    cmd.addAll(List.of("--", "--mode", "pretrain", "--config", yaml.toString()));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
    pb.environment().put("HANLIN_CLASSPATH", System.getProperty("java.class.path"));
    pb.environment().put("HANLIN_LAUNCH_GRACE", "3");
    pb.environment().keySet().removeIf(k -> k.startsWith("SLURM_"));
    pb.environment().putAll(env);
    return pb.redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
        .start();
  }

  static int finish(Process p, Path log) throws Exception {
    assertTrue(p.waitFor(3, TimeUnit.MINUTES), "run did not finish; see " + log);
    return p.exitValue();
  }

  /** The losses of {@code metrics.jsonl}, by step (1-based; a resumed run appends). */
  static List<Double> losses(Path out) throws IOException {
    return trainMetric(out, "loss");
  }

  /** {@code field} of {@code metrics.jsonl}'s train lines, by step (1-based). */
  static List<Double> trainMetric(Path out, String field) throws IOException {
    List<Double> l = new ArrayList<>();
    for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
      JsonNode n = JSON.readTree(line);
      if (n.get("type").asText().equals("train")) {
        int step = n.get("step").asInt();
        while (l.size() < step) l.add(Double.NaN);
        l.set(step - 1, n.get(field).asDouble());
      }
    }
    return l;
  }

  static long lastStep(Path out) {
    try {
      return losses(out).size();
    } catch (IOException | RuntimeException e) {
      return 0; // not written yet, or mid-write
    }
  }

  /** The largest elementwise difference between two exported models' weights. */
  static double maxWeightDifference(Path a, Path b) throws IOException {
    return maxDifference(a.resolve("model.safetensors"), b.resolve("model.safetensors"));
  }

  /** The largest elementwise difference between two safetensors files with the same names. */
  static double maxDifference(Path a, Path b) throws IOException {
    double max = 0;
    try (SafetensorsFile x = SafetensorsFile.open(a);
        SafetensorsFile y = SafetensorsFile.open(b);
        Scope s = Scope.open()) {
      assertEquals(x.names(), y.names());
      for (String n : x.names()) max = Math.max(max, x.load(n).sub(y.load(n)).abs().max().item());
    }
    return max;
  }

  /** Runs {@code yaml} on 2 processes of this host, output to {@code log}; it must exit 0. */
  static void runOnTwoProcesses(Path yaml, Path log) throws Exception {
    Process p = launch(yaml, log, "--nproc-per-node", "2", "--master-port", "" + freePort());
    assertEquals(0, finish(p, log), () -> read(log));
  }

  /** The run in {@code out} has the reference run's losses after step {@code from} and weights. */
  static void assertMatchesReference(Path out, int from) throws Exception {
    assertLossesMatch(losses(reference), losses(out), from);
    assertTrue(maxWeightDifference(reference, out) < 1e-4, "final weights differ");
  }

  static void assertLossesMatch(List<Double> expected, List<Double> actual, int from) {
    assertEquals(expected.size(), actual.size(), "steps");
    for (int i = from; i < expected.size(); i++)
      assertEquals(expected.get(i), actual.get(i), 1e-5, "loss at step " + (i + 1));
  }

  @BeforeAll
  static void referenceRun() throws Exception {
    data = shared.resolve("data");
    reference = shared.resolve("one");
    Path log = shared.resolve("one.log");
    assertEquals(
        0,
        finish(launch(config(reference, STEPS, 4, ""), log, "--nproc-per-node", "1"), log),
        () -> read(log));
    assertEquals(STEPS, losses(reference).size());
  }

  static String read(Path log) {
    try {
      return Files.readString(log);
    } catch (IOException e) {
      return e.toString();
    }
  }

  @Test
  void twoProcessesGiveTheLossesAndWeightsOfOneWithTheSameGlobalBatch(@TempDir Path tmp)
      throws Exception {
    Path two = tmp.resolve("two"), log = tmp.resolve("two.log");
    runOnTwoProcesses(config(two, STEPS, 2, ""), log);
    assertMatchesReference(two, 0);
    String out = read(log);
    assertTrue(out.contains("[0] step 6/6"), out); // rank 0 logs, with its prefix
    assertFalse(out.contains("[1] step"), out); // rank 1 does not
    assertTrue(Files.exists(two.resolve("checkpoint-6/trainer_state.json")));
  }

  @Test
  void twoSimulatedNodesThenOneProcessResumeWithTheSameLosses(@TempDir Path tmp) throws Exception {
    Path run = tmp.resolve("nodes");
    Path yaml = config(run, STEPS, 2, "stop_after_steps: 3");
    String port = "" + freePort();
    Process[] nodes = new Process[2];
    for (int node = 0; node < 2; node++)
      nodes[node] =
          launch(
              yaml,
              tmp.resolve("node" + node + ".log"),
              "--nnodes",
              "2",
              "--node-rank",
              "" + node,
              "--nproc-per-node",
              "1",
              "--master-addr",
              "127.0.0.1",
              "--master-port",
              port);
    for (int node = 0; node < 2; node++) {
      Path log = tmp.resolve("node" + node + ".log");
      assertEquals(0, finish(nodes[node], log), () -> read(log));
    }
    assertTrue(read(tmp.resolve("node1.log")).contains("[1] "), "node 1 runs rank 1");
    assertTrue(Files.exists(run.resolve("checkpoint-3/trainer_state.json")));

    // the rest of the run on one process with 4 blocks per step: the same global batch
    Path one = config(run, STEPS, 4, ""), log = tmp.resolve("resume.log");
    assertEquals(0, finish(launch(one, log, "--nproc-per-node", "1"), log), () -> read(log));
    assertTrue(read(log).contains("resuming from"), () -> read(log));
    assertMatchesReference(run, 0);
  }

  /** The optimizer state of a checkpoint's rank files, merged into one file for comparison. */
  static Path mergedOptimizerState(Path checkpoint, int world, Path into) throws IOException {
    Map<String, dev.hanlin.torch.Tensor> all = new java.util.LinkedHashMap<>();
    List<SafetensorsFile> open = new ArrayList<>();
    try {
      for (int r = 0; r < world; r++) {
        SafetensorsFile f =
            SafetensorsFile.open(
                checkpoint.resolve("optimizer-rank-" + r + "-of-" + world + ".safetensors"));
        open.add(f);
        for (String n : f.names()) assertEquals(null, all.put(n, f.view(n)), n + " in two files");
      }
      SafetensorsWriter.write(into, all);
    } finally {
      open.forEach(SafetensorsFile::close);
    }
    return into;
  }

  /** A sharded run's checkpoint: one optimizer file per rank, none whole. */
  static void assertShardedOptimizerFiles(Path checkpoint) {
    assertTrue(Files.exists(checkpoint.resolve("optimizer-rank-0-of-2.safetensors")), "rank 0's");
    assertTrue(Files.exists(checkpoint.resolve("optimizer-rank-1-of-2.safetensors")), "rank 1's");
    assertFalse(Files.exists(checkpoint.resolve("optimizer.safetensors")), "nothing gathered");
  }

  @Test
  void shardedOptimizerStateAndRecomputedActivationsGiveTheSameRunAndPerRankCheckpoints(
      @TempDir Path tmp) throws Exception {
    Path zero = tmp.resolve("zero"), log = tmp.resolve("zero.log");
    runOnTwoProcesses(config(zero, STEPS, 2, "zero_stage: 1\ngradient_checkpointing: true"), log);
    assertMatchesReference(zero, 0);
    // each rank wrote the moments of what it updates; together, those of an unsharded run
    Path ck = zero.resolve("checkpoint-6");
    assertShardedOptimizerFiles(ck);
    assertTrue(
        maxDifference(
                reference.resolve("checkpoint-6/optimizer.safetensors"),
                mergedOptimizerState(ck, 2, tmp.resolve("merged.safetensors")))
            < 1e-4,
        "optimizer state");

    // the 1-process run's step-3 checkpoint, resumed on 2 processes that each load their share
    Path resumed = tmp.resolve("resumed"), log2 = tmp.resolve("resumed.log");
    String from = "resume_from_checkpoint: " + reference.resolve("checkpoint-3");
    runOnTwoProcesses(config(resumed, STEPS, 2, "zero_stage: 1\n" + from), log2);
    assertMatchesReference(resumed, 3);
  }

  /**
   * ZeRO-2 (gradients too sharded) with 2 accumulated micro-batches of 1 block per rank: the run of
   * one process with 4 blocks per step. Its per-rank checkpoint resumes on one process, unsharded,
   * and the one process's checkpoint resumes with ZeRO-2 on two.
   */
  @Test
  void zeroStage2GivesTheRunOfOneProcessAndItsCheckpointsResumeEitherWay(@TempDir Path tmp)
      throws Exception {
    Path zero = tmp.resolve("zero2"), log = tmp.resolve("zero2.log");
    String zero2 = "zero_stage: 2\ngradient_checkpointing: true\n";
    runOnTwoProcesses(config(zero, STEPS, 1, zero2 + "gradient_accumulation_steps: 2"), log);
    assertMatchesReference(zero, 0);
    // AdamW and clipping hide a gradient's scale from the losses; its norm shows it
    List<Double> norms = trainMetric(reference, "grad_norm");
    for (int i = 0; i < STEPS; i++)
      assertEquals(
          norms.get(i), trainMetric(zero, "grad_norm").get(i), 1e-5, "grad norm, step " + (i + 1));
    assertShardedOptimizerFiles(zero.resolve("checkpoint-3"));

    // its step-3 checkpoint on one process with the same global batch
    Path one = tmp.resolve("one"), log1 = tmp.resolve("one.log");
    String from = "resume_from_checkpoint: " + zero.resolve("checkpoint-3");
    assertEquals(
        0,
        finish(launch(config(one, STEPS, 4, from), log1, "--nproc-per-node", "1"), log1),
        () -> read(log1));
    assertTrue(read(log1).contains("resuming from"), () -> read(log1));
    assertMatchesReference(one, 3);

    // the unsharded step-3 checkpoint of one process on two with ZeRO-2
    Path two = tmp.resolve("two"), log2 = tmp.resolve("two.log");
    from = "resume_from_checkpoint: " + reference.resolve("checkpoint-3");
    runOnTwoProcesses(config(two, STEPS, 2, zero2 + from), log2);
    assertMatchesReference(two, 3);
  }

  @Test
  void underTorchrunEveryRankIsAClientOfTheAgentsStore(@TempDir Path tmp) throws Exception {
    int port = freePort();
    // what torchrun's agent does before it starts the workers: serve the store on MASTER_PORT
    TCPStoreOptions so = new TCPStoreOptions();
    so.port((short) port).isServer(true).waitWorkers(false).timeout(new Milliseconds(60_000));
    TCPStore agent = new TCPStore("127.0.0.1", so);
    Path out = tmp.resolve("torchrun"), log = tmp.resolve("torchrun.log");
    Process p =
        launch(
            config(out, 2, 2, ""),
            log,
            Map.of("TORCHELASTIC_USE_AGENT_STORE", "True", "TORCHELASTIC_RESTART_COUNT", "0"),
            "--nproc-per-node",
            "2",
            "--master-port",
            "" + port);
    assertEquals(0, finish(p, log), () -> read(log));
    assertLossesMatch(losses(reference).subList(0, 2), losses(out), 0);
    assertTrue(agent.getNumKeys() > 0, "the ranks met through the agent's store");
  }

  /**
   * Starts a long 2-process run with a 10 s collective timeout and returns once it has taken a
   * step; pids by rank.
   */
  static long[] startLongRun(Path out, Path log, List<Process> launcher) throws Exception {
    Path yaml = config(out, 100_000, 2, "");
    Files.writeString(
        yaml,
        Files.readString(yaml)
            .replace("save_steps: 3", "save_steps: 0")
            .replace("dist_timeout_seconds: 30", "dist_timeout_seconds: 10"));
    Process p = launch(yaml, log, "--nproc-per-node", "2", "--master-port", "" + freePort());
    launcher.add(p);
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    while (p.isAlive() && lastStep(out) < 2 && System.nanoTime() < deadline) Thread.sleep(50);
    assertTrue(p.isAlive() && lastStep(out) >= 2, () -> "the run did not start: " + read(log));
    long[] pids = new long[2];
    Matcher m = Pattern.compile("rank (\\d)/2 \\(local \\d\\) is pid (\\d+)").matcher(read(log));
    while (m.find()) pids[Integer.parseInt(m.group(1))] = Long.parseLong(m.group(2));
    assertNotEquals(0, pids[1], () -> read(log));
    return pids;
  }

  @Test
  void aKilledRankEndsTheRunWithAnErrorAndANonZeroExit(@TempDir Path tmp) throws Exception {
    Path log = tmp.resolve("kill.log");
    List<Process> launcher = new ArrayList<>();
    long[] pids = startLongRun(tmp.resolve("kill"), log, launcher);
    ProcessHandle.of(pids[1]).orElseThrow().destroyForcibly(); // SIGKILL
    Process p = launcher.getFirst();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), () -> "still running: " + read(log));
    assertNotEquals(0, p.exitValue());
    String out = read(log);
    assertTrue(out.contains("[launch] rank 1 exited with status 137"), out);
    assertFalse(ProcessHandle.of(pids[0]).map(ProcessHandle::isAlive).orElse(false), out);
  }

  @Test
  void aHungRankMakesTheOthersFailWithinTheTimeout(@TempDir Path tmp) throws Exception {
    Path log = tmp.resolve("hang.log");
    List<Process> launcher = new ArrayList<>();
    long[] pids = startLongRun(tmp.resolve("hang"), log, launcher);
    new ProcessBuilder("kill", "-STOP", "" + pids[1]).start().waitFor();
    long t0 = System.nanoTime();
    Process p = launcher.getFirst();
    boolean ended = p.waitFor(60, TimeUnit.SECONDS);
    double seconds = (System.nanoTime() - t0) / 1e9;
    if (!ended) new ProcessBuilder("kill", "-KILL", "" + pids[0], "" + pids[1]).start().waitFor();
    assertTrue(ended, () -> "still running: " + read(log));
    assertNotEquals(0, p.exitValue());
    String out = read(log);
    assertTrue(out.contains("Another rank has probably died or hung"), out);
    assertTrue(out.contains("dist_timeout_seconds=10"), out);
    assertTrue(seconds < 10 + 3 + 20, "took " + seconds + " s");
  }
}
