package dev.hanlin.train.metrics;

import dev.hanlin.torch.io.ProgressLine;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * The live progress line: step, loss and its moving average, lr, gradient norm, tokens/s, MFU,
 * elapsed time and ETA. On a terminal the line is redrawn in place (carriage return); in a log file
 * it is printed at every multiple of {@code everySteps}, after {@code interval} without a line, at
 * the first and last step and at a skipped step.
 */
public final class ProgressListener implements TrainingListener {
  /** Smoothing of the shown average loss: an EMA over about the last {@link #LOSS_STEPS} steps. */
  static final double LOSS_BETA = 0.9;

  /** The average's span in steps, 1 / (1 - {@link #LOSS_BETA}), as the line labels it. */
  static final int LOSS_STEPS = 10;

  private final ProgressLine line;
  private final long everySteps;
  private final long intervalNanos;
  private final LongSupplier nanoClock;

  private final Ema loss = new Ema(LOSS_BETA);
  private long startNanos;
  private long startStep;
  private long lastPrintNanos;

  /**
   * @param out where lines go
   * @param interactive redraw one line with carriage returns (a terminal) or print whole lines
   * @param everySteps in non-interactive mode, print at least every this many steps
   * @param interval in non-interactive mode, print at least this often
   * @param nanoClock time source ({@code System::nanoTime}; tests pass their own)
   */
  public ProgressListener(
      PrintStream out,
      boolean interactive,
      long everySteps,
      Duration interval,
      LongSupplier nanoClock) {
    if (everySteps <= 0)
      throw new IllegalArgumentException("everySteps must be > 0, got " + everySteps);
    this.line = new ProgressLine(out, interactive);
    this.everySteps = everySteps;
    this.intervalNanos = interval.toNanos();
    this.nanoClock = nanoClock;
  }

  /**
   * Progress on stderr: redrawn in place when the JVM has a console, else a line every {@code
   * everySteps} steps or 10 seconds.
   */
  public static ProgressListener toStderr(long everySteps) {
    ProgressLine console = ProgressLine.onConsole(System.err);
    return new ProgressListener(
        System.err, console.interactive(), everySteps, Duration.ofSeconds(10), System::nanoTime);
  }

  @Override
  public void onStart(RunInfo info) {
    startNanos = nanoClock.getAsLong();
    lastPrintNanos = startNanos;
    startStep = info.startStep();
    String from = info.resumed() ? " resuming after step " + info.startStep() + "," : "";
    message(
        info.name() + ":" + from + " " + info.maxSteps() + " steps, output " + info.outputDir());
  }

  @Override
  public void onStep(StepMetrics m) {
    long now = nanoClock.getAsLong();
    double smoothed = m.skipped() ? loss.value() : loss.add(m.loss());
    double elapsed = (now - startNanos) / 1e9;
    long done = m.step() - startStep;
    double eta = done > 0 ? elapsed / done * Math.max(0, m.maxSteps() - m.step()) : Double.NaN;
    String text = format(m, smoothed, elapsed, eta);
    if (line.interactive()) {
      line.show(text);
    } else if (m.step() % everySteps == 0
        || now - lastPrintNanos >= intervalNanos
        || m.step() >= m.maxSteps()
        || done == 1
        || m.skipped()) {
      line.show(text);
      lastPrintNanos = now;
    }
  }

  @Override
  public void onEval(EvalMetrics m) {
    message(format(m));
  }

  @Override
  public void onCheckpoint(long step, Path dir) {
    message("checkpoint @ step " + step + " -> " + dir);
  }

  @Override
  public void onEnd() {
    double elapsed = (nanoClock.getAsLong() - startNanos) / 1e9;
    message("done in " + clock(elapsed));
  }

  /**
   * One progress line, e.g. {@code step 120/1000 | loss 3.3981 (avg10 3.4512) | lr 3.00e-04 | grad
   * 1.234 | 12.3k tok/s | MFU 41.2% | 0:01:23 | ETA 0:10:05}: the step's loss, then its moving
   * average over about the last 10 steps (a bias-corrected EMA). MFU and unknown values show as
   * "-".
   */
  public static String format(
      StepMetrics m, double smoothedLoss, double elapsedSeconds, double etaSeconds) {
    StringBuilder b = new StringBuilder();
    b.append("step ").append(m.step()).append('/').append(m.maxSteps());
    b.append(" | loss ").append(fixed(m.loss(), 4));
    b.append(" (avg").append(LOSS_STEPS).append(' ').append(fixed(smoothedLoss, 4)).append(')');
    b.append(" | lr ")
        .append(Double.isFinite(m.lr()) ? String.format(Locale.ROOT, "%.2e", m.lr()) : "-");
    b.append(" | grad ").append(fixed(m.gradNorm(), 3));
    b.append(" | ").append(si(m.tokensPerSecond())).append(" tok/s");
    b.append(" | MFU ").append(Double.isFinite(m.mfu()) ? fixed(100 * m.mfu(), 1) + "%" : "-");
    b.append(" | ").append(clock(elapsedSeconds));
    b.append(" | ETA ").append(clock(etaSeconds));
    if (m.skipped()) b.append(" | step skipped (non-finite loss or gradient)");
    return b.toString();
  }

  /** The evaluation line: {@code eval @ step 100 | loss 3.2100 | ppl 24.78 | acc 41.30% | ...}. */
  public static String format(EvalMetrics m) {
    return "eval @ step "
        + m.step()
        + " | loss "
        + fixed(m.loss(), 4)
        + " | ppl "
        + fixed(m.perplexity(), 2)
        + " | acc "
        + (Double.isFinite(m.accuracy()) ? fixed(100 * m.accuracy(), 2) + "%" : "-")
        + " | "
        + si(m.tokens())
        + " tokens";
  }

  /** {@code H:MM:SS} (hours unbounded), "-" when unknown. */
  public static String clock(double seconds) {
    if (!Double.isFinite(seconds) || seconds < 0) return "-";
    long s = Math.round(seconds);
    return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  }

  /** 850, 12.3k, 1.23M, 4.56G; "-" when unknown. */
  public static String si(double v) {
    if (!Double.isFinite(v)) return "-";
    double a = Math.abs(v);
    if (a < 1e3) return String.format(Locale.ROOT, "%.0f", v);
    String[] units = {"k", "M", "G", "T"};
    int u = -1;
    while (a >= 999.5 && u < units.length - 1) {
      a /= 1e3;
      v /= 1e3;
      u++;
    }
    String digits = a >= 99.95 ? "%.0f" : a >= 9.995 ? "%.1f" : "%.2f";
    return String.format(Locale.ROOT, digits, v) + units[u];
  }

  private static String fixed(double v, int decimals) {
    return Double.isFinite(v) ? String.format(Locale.ROOT, "%." + decimals + "f", v) : "-";
  }

  /**
   * Prints a whole line below an in-place progress line, which is ended first and so stays on the
   * screen (the last step's numbers are not overwritten by the checkpoint or eval line).
   */
  private void message(String text) {
    line.message(text);
  }
}
