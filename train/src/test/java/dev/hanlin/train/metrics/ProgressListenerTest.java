package dev.hanlin.train.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.Test;

class ProgressListenerTest {

  private static StepMetrics step(long s, long max, double loss, double mfu) {
    return new StepMetrics(s, max, loss, 3e-4, 1.234, 8192, 0.5, 12345, mfu, false);
  }

  @Test
  void formatsAStepLine() {
    assertEquals(
        "step 120/1000 | loss 9.0000 (avg10 3.4512) | lr 3.00e-04 | grad 1.234 | 12.3k tok/s | MFU 41.2%"
            + " | 0:01:23 | ETA 2:46:40",
        ProgressListener.format(step(120, 1000, 9, 0.41234), 3.45119, 83.4, 10000));
  }

  @Test
  void mfuIsADashOnCpuAndUnknownsAreDashes() {
    String line =
        ProgressListener.format(
            new StepMetrics(1, 10, Double.NaN, 1e-3, Double.NaN, 0, 0, 950, Double.NaN, true),
            Double.NaN,
            0,
            Double.NaN);
    assertEquals(
        "step 1/10 | loss - (avg10 -) | lr 1.00e-03 | grad - | 950 tok/s | MFU - | 0:00:00 | ETA -"
            + " | step skipped (non-finite loss or gradient)",
        line);
  }

  @Test
  void formatsEvalClockAndUnits() {
    assertEquals(
        "eval @ step 100 | loss 3.2100 | ppl 24.78 | acc 41.30% | 65.5k tokens",
        ProgressListener.format(EvalMetrics.of(100, 3.21, 0.413, 65_536)));
    assertEquals("0:00:59", ProgressListener.clock(59.4));
    assertEquals("27:46:40", ProgressListener.clock(100_000));
    assertEquals("-", ProgressListener.clock(Double.POSITIVE_INFINITY));
    assertEquals("1.23M", ProgressListener.si(1_234_567));
    assertEquals("123k", ProgressListener.si(123_456));
    assertEquals("4.56G", ProgressListener.si(4.56e9));
  }

  @Test
  void etaUsesTheRateSinceStartAndSmoothsLoss() {
    long[] now = {0};
    var buf = new ByteArrayOutputStream();
    var p = listener(buf, false, 1, () -> now[0]);
    p.onStart(new RunInfo("demo", 110, 10, Path.of("out"), Double.NaN, 1));
    now[0] = 2_000_000_000L; // 2 s for steps 11 and 12: 1 s a step, 98 to go
    p.onStep(step(11, 110, 4.0, Double.NaN));
    p.onStep(step(12, 110, 2.0, Double.NaN));
    String[] lines = buf.toString(StandardCharsets.UTF_8).split("\n");
    assertEquals("demo: resuming after step 10, 110 steps, output out", lines[0]);
    // bias-corrected EMA(0.9) of 4, 2: (0.1*0.9*4 + 0.1*2) / (1 - 0.81) = 2.947...
    assertTrue(lines[2].startsWith("step 12/110 | loss 2.0000 (avg10 2.9474) |"), lines[2]);
    assertTrue(lines[2].endsWith("| 0:00:02 | ETA 0:01:38"), lines[2]);
  }

  @Test
  void logModePrintsEveryNStepsOrInterval() {
    long[] now = {0};
    var buf = new ByteArrayOutputStream();
    var p = listener(buf, false, 5, () -> now[0]);
    p.onStart(new RunInfo("demo", 20, 0, Path.of("out"), Double.NaN, 1));
    for (int s = 1; s <= 20; s++) {
      now[0] += s == 13 ? 11_000_000_000L : 100_000_000L; // step 13 takes 11 s
      p.onStep(step(s, 20, 3, Double.NaN));
    }
    String out = buf.toString(StandardCharsets.UTF_8);
    assertFalse(out.contains("\r"));
    // the first step, every multiple of 5, and the slow step 13
    assertEquals(
        "1 5 10 13 15 20",
        out.lines()
            .filter(l -> l.startsWith("step "))
            .map(l -> l.substring(5, l.indexOf('/')))
            .reduce((a, b) -> a + " " + b)
            .orElse(""));
  }

  @Test
  void terminalModeRedrawsOneLine() {
    var buf = new ByteArrayOutputStream();
    var p = listener(buf, true, 100, () -> 0);
    p.onStart(new RunInfo("demo", 2, 0, Path.of("out"), Double.NaN, 1));
    p.onStep(step(1, 2, 3, 0.5));
    p.onStep(step(2, 2, 3, 0.5));
    p.onEval(EvalMetrics.of(2, 2, 0.5, 10));
    String out = buf.toString(StandardCharsets.UTF_8);
    String[] parts = out.split("\n");
    assertTrue(parts[1].startsWith("\rstep 1/2"), parts[1]);
    assertTrue(parts[1].contains("\rstep 2/2"), parts[1]);
    assertTrue(parts[1].contains("MFU 50.0%"), parts[1]);
    // the eval line goes below the last step's line, which stays visible
    assertTrue(parts[1].stripTrailing().endsWith("ETA 0:00:00"), parts[1]);
    assertTrue(parts[2].startsWith("eval @ step 2 |"), parts[2]);
    p.onStep(step(3, 3, 3, 0.5));
    p.onCheckpoint(3, Path.of("out/checkpoint-3"));
    String[] after = buf.toString(StandardCharsets.UTF_8).split("\n");
    assertTrue(after[3].startsWith("\rstep 3/3"), after[3]);
    assertEquals("checkpoint @ step 3 -> out/checkpoint-3", after[4]);
  }

  /**
   * A listener printing to {@code buf} with a 10 s log interval, reading time from {@code clock}.
   */
  private static ProgressListener listener(
      ByteArrayOutputStream buf, boolean tty, int everyN, LongSupplier clock) {
    return new ProgressListener(
        new PrintStream(buf, true, StandardCharsets.UTF_8),
        tty,
        everyN,
        Duration.ofSeconds(10),
        clock);
  }
}
