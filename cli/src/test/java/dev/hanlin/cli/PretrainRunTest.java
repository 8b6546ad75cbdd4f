package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whole training runs in child JVMs, as users run them: exact resume after SIGKILL (at a random
 * moment, and with a half-written checkpoint left behind), a clean checkpoint on SIGTERM, and
 * gradient accumulation equal to one large batch.
 */
class PretrainRunTest {
  static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path shared;
  static Path data;

  /** A small config: tiny model, short blocks, shared prepared data. */
  static Path config(Path dir, int steps, int batch, int accum, String extra) throws IOException {
    return TinyRun.small(
        dir,
        data,
        steps,
        batch,
        """
        gradient_accumulation_steps: %d
        learning_rate: 3.0e-3
        warmup_steps: 3
        eval_steps: 0
        max_eval_batches: 2
        save_steps: 4
        save_total_limit: 3
        logging_steps: 1
        device: cpu
        %s
        """
            .formatted(accum, extra));
  }

  static Process start(Path yaml, Path log) throws IOException {
    return TinyRun.pretrain(yaml, log);
  }

  static int runToEnd(Path yaml, Path log) throws Exception {
    return TinyRun.finish(start(yaml, log), log, 5);
  }

  /** The first {@code steps} train losses of the two runs agree to 1e-5. */
  static void assertSameLosses(Path expected, Path actual, int steps) throws IOException {
    List<String> x = losses(expected), y = losses(actual);
    for (int i = 0; i < steps; i++) {
      double l1 = Double.parseDouble(x.get(i).split(":")[1]),
          l2 = Double.parseDouble(y.get(i).split(":")[1]);
      assertEquals(l1, l2, 1e-5, "step " + (i + 1));
    }
  }

  /** step -> loss text, exactly as written, from metrics.jsonl. */
  static List<String> losses(Path out) throws IOException {
    List<String> l = new ArrayList<>();
    for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
      JsonNode n = JSON.readTree(line);
      if (n.get("type").asText().equals("train"))
        l.add(
            n.get("step").asLong()
                + ":"
                + n.get("loss").asText()
                + ":"
                + n.get("grad_norm").asText());
    }
    return l;
  }

  static long lastStep(Path out) {
    try {
      List<String> l = losses(out);
      return l.isEmpty() ? 0 : Long.parseLong(l.getLast().split(":")[0]);
    } catch (IOException | RuntimeException e) {
      return 0; // the file may be mid-write
    }
  }

  @BeforeAll
  static void prepareOnce() throws Exception {
    data = shared.resolve("data");
    Path out = shared.resolve("warmup");
    assertEquals(0, runToEnd(config(out, 1, 2, 1, ""), shared.resolve("warmup.log")));
  }

  @Test
  void sigkillAtARandomMomentThenResumeGivesBitwiseTheSameLosses(@TempDir Path tmp)
      throws Exception {
    int steps = 24;
    Path a = tmp.resolve("a");
    assertEquals(0, runToEnd(config(a, steps, 4, 1, ""), tmp.resolve("a.log")));
    List<String> reference = losses(a);
    assertEquals(steps, reference.size());

    Path b = tmp.resolve("b");
    Path yaml = config(b, steps, 4, 1, "");
    Random rnd = new Random();
    long killAt = 6 + rnd.nextInt(12);
    Process p = start(yaml, tmp.resolve("b.log"));
    while (p.isAlive() && lastStep(b) < killAt) Thread.sleep(rnd.nextInt(20));
    p.destroyForcibly(); // SIGKILL
    p.waitFor();
    // what a kill during a checkpoint write leaves: a temp folder, and a folder without its state
    Files.createDirectories(b.resolve(".checkpoint-999.tmp"));
    Files.writeString(b.resolve(".checkpoint-999.tmp/model.safetensors"), "half");
    Files.createDirectories(b.resolve("checkpoint-998"));
    assertEquals(
        0, runToEnd(yaml, tmp.resolve("b.log")), "resume failed; see " + tmp.resolve("b.log"));
    assertTrue(Files.readString(tmp.resolve("b.log")).contains("resuming from"), "did not resume");
    assertEquals(reference, losses(b), "killed after step " + killAt);
    assertFalse(Files.exists(b.resolve(".checkpoint-999.tmp")), "stale temp checkpoint removed");
    assertTrue(Files.exists(b.resolve("model.safetensors")), "final HF export");
    assertTrue(Files.exists(b.resolve("loss.png")));
  }

  @Test
  void sigtermWritesACheckpointAndExits(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("t");
    Process p = start(config(out, 10_000, 2, 1, ""), tmp.resolve("t.log"));
    while (p.isAlive() && lastStep(out) < 6) Thread.sleep(10);
    p.destroy(); // SIGTERM
    assertTrue(p.waitFor(2, TimeUnit.MINUTES));
    long step = lastStep(out);
    String log = Files.readString(tmp.resolve("t.log"));
    assertTrue(
        Files.exists(out.resolve("checkpoint-" + step + "/trainer_state.json")),
        "no checkpoint at the last step " + step + ": " + log);
    assertEquals(143, p.exitValue(), log); // 128 + SIGTERM, as a stopped process should exit
    // the picture is drawn while the JVM shuts down: ImageIO's cache used to fail there with
    // "Shutdown in progress" and leave a 0-byte loss.png
    assertFalse(log.contains("error:"), log);
    assertTrue(
        javax.imageio.ImageIO.read(out.resolve("loss.png").toFile()) != null, "loss.png: " + log);
    List<String> lines = log.lines().filter(l -> !l.isBlank()).toList();
    assertTrue(
        lines.getLast().contains("checkpoint-" + step)
            && lines.getLast().contains("run the same command again to resume"),
        lines.getLast());
  }

  @Test
  void accumulatedMicroBatchesEqualOneLargeBatch(@TempDir Path tmp) throws Exception {
    Path big = tmp.resolve("big"), acc = tmp.resolve("acc");
    assertEquals(0, runToEnd(config(big, 3, 8, 1, ""), tmp.resolve("big.log")));
    assertEquals(0, runToEnd(config(acc, 3, 2, 4, ""), tmp.resolve("acc.log")));
    assertSameLosses(big, acc, 3);
  }

  @Test
  void activationCheckpointingTrainsLikeThePlainBackward(@TempDir Path tmp) throws Exception {
    Path plain = tmp.resolve("plain"), ckpt = tmp.resolve("ckpt");
    assertEquals(0, runToEnd(config(plain, 3, 4, 1, ""), tmp.resolve("plain.log")));
    assertEquals(
        0,
        runToEnd(config(ckpt, 3, 4, 1, "gradient_checkpointing: true"), tmp.resolve("ckpt.log")));
    assertSameLosses(plain, ckpt, 3);
  }

  @Test
  void bf16MasterWeightsResumeExactlyAndTrainLikeAutocast(@TempDir Path tmp) throws Exception {
    // the model computes in bf16; checkpoints hold the fp32 masters, so a resume is exact
    String master = "bf16: true\nmaster_weights: true";
    Path a = tmp.resolve("a"), b = tmp.resolve("b"), auto = tmp.resolve("auto");
    assertEquals(0, runToEnd(config(a, 10, 4, 1, master), tmp.resolve("a.log")));
    Path yb = config(b, 10, 4, 1, master + "\nstop_after_steps: 5");
    assertEquals(0, runToEnd(yb, tmp.resolve("b.log")));
    Files.writeString(yb, Files.readString(yb).replace("stop_after_steps: 5", ""));
    assertEquals(0, runToEnd(yb, tmp.resolve("b.log")));
    assertTrue(Files.readString(tmp.resolve("b.log")).contains("resuming from"));
    assertEquals(losses(a), losses(b));
    try (var f =
        dev.hanlin.torch.safetensors.SafetensorsFile.open(
            a.resolve("checkpoint-10/model.safetensors"))) {
      assertEquals(dev.hanlin.torch.DType.F32, f.info("model.norm.weight").dtype());
    }
    try (var f =
        dev.hanlin.torch.safetensors.SafetensorsFile.open(a.resolve("model.safetensors"))) {
      assertEquals(dev.hanlin.torch.DType.BF16, f.info("model.norm.weight").dtype());
    }
    // and it learns as autocast over fp32 weights does, within bf16's rounding
    assertEquals(0, runToEnd(config(auto, 10, 4, 1, "bf16: true"), tmp.resolve("auto.log")));
    assertTrue(Files.readString(tmp.resolve("a.log")).contains("AdamW updates fp32 master"));
    List<String> x = losses(a), y = losses(auto);
    assertFalse(x.equals(y), "master weights changed nothing");
    for (int i = 0; i < 10; i++) {
      double l1 = Double.parseDouble(x.get(i).split(":")[1]),
          l2 = Double.parseDouble(y.get(i).split(":")[1]);
      assertEquals(l2, l1, 0.02 * l2, "step " + (i + 1));
    }
  }

  @Test
  void nonFiniteStepsAreSkippedThenStopTheRun(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("n");
    Path yaml = config(out, 50, 2, 1, "max_nonfinite_steps: 2");
    Files.writeString(
        yaml, Files.readString(yaml).replace("learning_rate: 3.0e-3", "learning_rate: 1.0e+30"));
    Path log = tmp.resolve("n.log");
    assertEquals(1, runToEnd(yaml, log));
    String text = Files.readString(log);
    assertTrue(text.contains("skipped (1 in a row)"), text);
    assertTrue(text.contains("2 steps in a row had a non-finite loss or gradient norm"), text);
  }

  @Test
  void configErrorsNameKeyLineAndSuggestion(@TempDir Path tmp) throws Exception {
    Path yaml = config(tmp.resolve("c"), 1, 2, 1, "learnin_rate: 1.0e-3");
    Path log = tmp.resolve("c.log");
    assertEquals(1, runToEnd(yaml, log));
    String out = Files.readString(log);
    assertTrue(
        out.contains("unknown key 'learnin_rate'") && out.contains("did you mean 'learning_rate'"),
        out);
    assertTrue(out.contains(yaml + ":20"), out);

    Path bad = config(tmp.resolve("d"), 1, 2, 1, "");
    Files.writeString(bad, Files.readString(bad).replace("block_size: 32", "block_size: big"));
    assertEquals(1, runToEnd(bad, tmp.resolve("d.log")));
    String o2 = Files.readString(tmp.resolve("d.log"));
    assertTrue(o2.contains("block_size") && o2.contains(bad + ":7"), o2);
    assertTrue(
        new File(tmp.toFile(), "c").list() == null
            || !Files.exists(tmp.resolve("c/metrics.jsonl")));
  }
}
