package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code save_strategy: no} on a whole CPU run (the offloaded 7B benchmark's need: its 81 GB of
 * fp32 state does not fit the device's disk): no checkpoint, the model still exported; running into
 * that output_dir again, or resuming from it, stops saying there is nothing to resume.
 */
class SaveStrategyRunTest {
  @Test
  @Tag("slow")
  void noWritesTheModelAndNoCheckpointAndCannotBeResumed(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("run"), log = tmp.resolve("run.log");
    Path yaml =
        TinyRun.small(
            out,
            tmp.resolve("data"),
            6,
            2,
            "save_strategy: no\nbf16: true\noffload_optimizer: cpu\ngradient_checkpointing: true\n"
                + "max_eval_batches: 1\nlogging_steps: 1\ndevice: cpu\n");
    assertEquals(0, TinyRun.finish(TinyRun.pretrain(yaml, log), log, 5), () -> read(log));
    assertTrue(Files.exists(out.resolve("model.safetensors")), () -> read(log));
    assertEquals(6, PretrainRunTest.losses(out).size());
    try (Stream<Path> files = Files.list(out)) {
      assertEquals(
          0,
          files.filter(f -> f.getFileName().toString().contains("checkpoint")).count(),
          "no checkpoint-* (nor a half-written one)");
    }

    Path again = tmp.resolve("again.log");
    assertNotEquals(0, TinyRun.finish(TinyRun.pretrain(yaml, again), again, 5));
    assertTrue(read(again).contains("there is nothing to resume"), () -> read(again));
    assertTrue(read(again).contains("overwrite_output_dir: true"), () -> read(again));

    Path other = tmp.resolve("other"), resumed = tmp.resolve("resumed.log");
    Path from =
        TinyRun.small(
            other,
            tmp.resolve("data"),
            6,
            2,
            "resume_from_checkpoint: " + out + "\nmax_eval_batches: 1\ndevice: cpu\n");
    assertNotEquals(0, TinyRun.finish(TinyRun.pretrain(from, resumed), resumed, 5));
    assertTrue(read(resumed).contains("save_strategy: no"), () -> read(resumed));
    assertTrue(read(resumed).contains("nothing to resume"), () -> read(resumed));
  }

  static String read(Path log) {
    return DistributedRunTest.read(log);
  }
}
