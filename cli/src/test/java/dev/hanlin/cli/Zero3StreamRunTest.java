package dev.hanlin.cli;

import static dev.hanlin.cli.DistributedRunTest.finish;
import static dev.hanlin.cli.DistributedRunTest.freePort;
import static dev.hanlin.cli.DistributedRunTest.launch;
import static dev.hanlin.cli.DistributedRunTest.losses;
import static dev.hanlin.cli.DistributedRunTest.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ZeRO-3's prefetch and its setup without the whole model, as whole runs on the CPU with Gloo (each
 * rank a child JVM of bin/launch): gathering the next unit ahead moves no number (losses and the
 * exported bytes equal with it off), and a run that starts from a model folder, read unit by unit,
 * trains as the unsharded run from that folder.
 */
class Zero3StreamRunTest {
  static final String ZERO3 = "zero_stage: 3\n";
  @TempDir static Path shared;
  static Path data;

  @BeforeAll
  static void paths() {
    data = shared.resolve("data");
  }

  /** The tiny model of Zero3RunTest: {@code steps} steps of {@code batch} blocks a rank. */
  static Path config(Path dir, int steps, int batch, String extra) throws IOException {
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
        save_steps: 0
        logging_steps: 5
        device: cpu
        gradient_checkpointing: true
        dist_timeout_seconds: 30
        """
            + extra);
  }

  static void run(int n, Path yaml, Path log, Map<String, String> env) throws Exception {
    Process p =
        launch(yaml, log, env, "--nproc-per-node", "" + n, "--master-port", "" + freePort());
    assertEquals(0, finish(p, log), () -> read(log));
  }

  /** Two ranks with the prefetch on and off: the same losses and the same exported bytes. */
  @Test
  @Tag("slow")
  void prefetchingTheNextUnitChangesNoNumber(@TempDir Path tmp) throws Exception {
    Path on = tmp.resolve("on"), off = tmp.resolve("off");
    run(2, config(on, 10, 3, ZERO3), tmp.resolve("on.log"), Map.of());
    run(2, config(off, 10, 3, ZERO3), tmp.resolve("off.log"), Map.of("HANLIN_ZERO3_PREFETCH", "0"));
    assertEquals(10, losses(on).size());
    assertEquals(losses(off), losses(on));
    assertArrayEquals(
        Files.readAllBytes(off.resolve("model.safetensors")),
        Files.readAllBytes(on.resolve("model.safetensors")));
  }

  /**
   * From a model folder: two ZeRO-3 ranks, which read it unit by unit, give the losses of one
   * unsharded process that loads it whole, over the same global batch.
   */
  @Test
  @Tag("slow")
  void aRunFromAModelFolderReadUnitByUnitIsTheUnshardedRun(@TempDir Path tmp) throws Exception {
    Path base = tmp.resolve("base");
    run(1, config(base, 4, 6, ""), tmp.resolve("base.log"), Map.of());
    Path plain = tmp.resolve("plain"), two = tmp.resolve("two");
    String from = "model_name_or_path: " + base + "\n";
    run(1, fromFolder(config(plain, 10, 6, from)), tmp.resolve("plain.log"), Map.of());
    run(2, fromFolder(config(two, 10, 3, ZERO3 + from)), tmp.resolve("two.log"), Map.of());
    assertTrue(read(tmp.resolve("two.log")).contains("zero_stage 3"), read(tmp.resolve("two.log")));
    List<Double> want = losses(plain), got = losses(two);
    assertEquals(10, want.size());
    for (int i = 0; i < want.size(); i++)
      assertEquals(want.get(i), got.get(i), 1e-5, "loss at step " + (i + 1));
  }

  /** The model comes from the folder: the config's overrides go. */
  static Path fromFolder(Path yaml) throws IOException {
    Files.writeString(yaml, Files.readString(yaml).replaceFirst("config_overrides: .*\n", ""));
    return yaml;
  }
}
