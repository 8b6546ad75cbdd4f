package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code explicit_backward: true} in a run's config, as users set it: 20 CPU pretraining steps of
 * the tiny model track the autograd run's losses and gradient norms within 1e-4 (float32), keeping
 * activations and with gradient checkpointing. Slow: three child JVMs (437 s on 2 shared cores).
 */
@Tag("slow")
class ExplicitRunTest {
  private static final int STEPS = 20;

  @Test
  void twentyStepsWithExplicitBackwardTrackTheAutogradRun(@TempDir Path tmp) throws Exception {
    Path data = tmp.resolve("data");
    Path plain = tmp.resolve("plain");
    assertEquals(0, run(plain, data, "", tmp));
    List<String> want = PretrainRunTest.losses(plain);
    assertEquals(STEPS, want.size());
    for (String extra :
        new String[] {
          "explicit_backward: true", "explicit_backward: true\ngradient_checkpointing: true"
        }) {
      Path out = tmp.resolve("explicit" + extra.length());
      assertEquals(0, run(out, data, extra, tmp));
      List<String> got = PretrainRunTest.losses(out);
      assertNotEquals(want, got, "bitwise equal: did the explicit backward run?");
      for (int i = 0; i < STEPS; i++) {
        String[] a = want.get(i).split(":"), b = got.get(i).split(":");
        assertEquals(Double.parseDouble(a[1]), Double.parseDouble(b[1]), 1e-4, "loss " + (i + 1));
        double norm = Double.parseDouble(a[2]);
        assertEquals(norm, Double.parseDouble(b[2]), 1e-4 * norm, "grad norm " + (i + 1));
      }
      assertFalse(
          Files.readString(tmp.resolve(out.getFileName() + ".log")).contains("not supported"));
    }
  }

  private static int run(Path out, Path data, String extra, Path tmp) throws Exception {
    String keys =
        "learning_rate: 3.0e-3\nwarmup_steps: 3\neval_steps: 0\nlogging_steps: 1\ndevice: cpu\n";
    Path yaml = TinyRun.small(out, data, STEPS, 4, keys + extra + "\n");
    return TinyRun.finish(
        TinyRun.pretrain(yaml, tmp.resolve(out.getFileName() + ".log")),
        tmp.resolve(out.getFileName() + ".log"),
        5);
  }
}
