package dev.hanlin.data.prepare;

import dev.hanlin.torch.io.ProgressLine;
import java.io.PrintStream;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The prepare progress bar on stderr: files, MB/s, tokens/s and ETA. Redrawn in place twice a
 * second on a terminal; one line every 10 s when stderr is a file or pipe ({@link ProgressLine}).
 */
final class Progress implements AutoCloseable {
  final AtomicLong bytes = new AtomicLong();
  final AtomicLong tokens = new AtomicLong();
  final AtomicLong files = new AtomicLong();
  private final AtomicLong totalBytes;
  private final long totalFiles;
  private final ProgressLine console;
  private final long start = System.nanoTime();
  private final Thread thread;
  private volatile boolean stop;

  Progress(long totalFiles, long totalBytes, PrintStream out, boolean enabled) {
    this.totalFiles = totalFiles;
    this.totalBytes = new AtomicLong(totalBytes);
    this.console = ProgressLine.onConsole(out);
    if (enabled) {
      thread = Thread.ofPlatform().daemon().name("prepare-progress").start(this::loop);
    } else {
      thread = null;
    }
  }

  private void loop() {
    long period = console.interactive() ? 500 : 10_000;
    while (!stop) {
      try {
        Thread.sleep(period);
      } catch (InterruptedException e) {
        return;
      }
      if (!stop) draw(false);
    }
  }

  /** An input that needs no work (reused): it leaves the total, not the rate. */
  void skip(long bytes) {
    totalBytes.addAndGet(-bytes);
    files.incrementAndGet();
  }

  double seconds() {
    return (System.nanoTime() - start) / 1e9;
  }

  /** Redraws the bar; the {@code last} time it stays on the screen, ending with the total time. */
  synchronized void draw(boolean last) {
    double s = Math.max(1e-9, seconds());
    long b = bytes.get();
    long total = totalBytes.get();
    double frac = total <= 0 ? 1.0 : Math.min(1.0, b / (double) total);
    int width = 24;
    int filled = (int) Math.round(frac * width);
    double mbps = b / s / 1e6;
    double tps = tokens.get() / s;
    String eta =
        last
            ? "done in " + clock(s)
            : "ETA " + (mbps > 0 ? clock((total - b) / (mbps * 1e6)) : "--:--:--");
    String line =
        String.format(
            Locale.ROOT,
            "prepare [%s] %3.0f%%  %d/%d files  %.1f MB/s  %s tok/s  %s",
            ProgressLine.bar('=', filled, width),
            frac * 100,
            files.get(),
            totalFiles,
            mbps,
            human(tps),
            eta);
    console.show(line);
    if (last) console.end();
  }

  static String human(double v) {
    if (v >= 1e6) return String.format(Locale.ROOT, "%.2fM", v / 1e6);
    if (v >= 1e3) return String.format(Locale.ROOT, "%.1fk", v / 1e3);
    return String.format(Locale.ROOT, "%.0f", v);
  }

  static String clock(double seconds) {
    long t = (long) seconds;
    return String.format(Locale.ROOT, "%02d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  }

  @Override
  public void close() {
    stop = true;
    if (thread != null) {
      thread.interrupt();
      draw(true);
    }
  }
}
