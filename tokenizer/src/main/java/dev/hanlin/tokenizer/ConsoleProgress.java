package dev.hanlin.tokenizer;

import java.io.PrintStream;

/** A one-line progress bar per phase, redrawn in place on a terminal stream. */
public final class ConsoleProgress implements VocabExtension.Progress {
  private final PrintStream out;
  private final long startNanos = System.nanoTime();
  private String phase;
  private int lastPercent = -1;

  public ConsoleProgress(PrintStream out) {
    this.out = out;
  }

  @Override
  public synchronized void update(String phase, long done, long total) {
    if (!phase.equals(this.phase)) {
      if (this.phase != null) out.println();
      this.phase = phase;
      lastPercent = -1;
    }
    int percent = total <= 0 ? 100 : (int) (100 * done / total);
    if (percent == lastPercent) return;
    lastPercent = percent;
    int filled = percent / 4;
    out.printf(
        "\r%-6s [%s%s] %3d%% %,d/%,d  %.0fs",
        phase,
        "#".repeat(filled),
        " ".repeat(25 - filled),
        percent,
        done,
        total,
        (System.nanoTime() - startNanos) / 1e9);
    if (percent >= 100) {
      out.println();
      this.phase = null;
    }
    out.flush();
  }
}
