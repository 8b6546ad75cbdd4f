package dev.hanlin.torch.io;

import java.io.PrintStream;

/**
 * The one console progress renderer: a status line that prepare, the tokenizer tools and training
 * each fill with their own numbers. Interactive (a terminal), the line is redrawn in place with a
 * carriage return and padded so that nothing of a longer previous line stays visible; otherwise
 * every shown state is a line of its own (the caller decides how often). A message ends a pending
 * in-place line first, so the last state stays on the screen above it.
 */
public final class ProgressLine {
  private final PrintStream out;
  private final boolean interactive;
  private int lastLength;
  private boolean pending;

  /**
   * @param out where lines go
   * @param interactive redraw one line in place (a terminal) or print whole lines (a log file)
   */
  public ProgressLine(PrintStream out, boolean interactive) {
    this.out = out;
    this.interactive = interactive;
  }

  /** On {@code out}, interactive when the JVM has a console. */
  public static ProgressLine onConsole(PrintStream out) {
    return new ProgressLine(out, System.console() != null);
  }

  /** Whether the line is redrawn in place. */
  public boolean interactive() {
    return interactive;
  }

  /** Shows {@code line} as the current state. */
  public synchronized void show(String line) {
    if (interactive) {
      out.print("\r" + pad(line));
      pending = true;
    } else {
      out.println(line);
    }
    out.flush();
  }

  /** Ends a pending in-place line, which stays on the screen; the next state starts a new one. */
  public synchronized void end() {
    if (pending) {
      out.print("\n");
      out.flush();
    }
    pending = false;
    lastLength = 0;
  }

  /** Prints a whole line below the status line. */
  public synchronized void message(String text) {
    end();
    out.println(text);
    out.flush();
  }

  /** A bar of {@code width} cells, the first {@code filled} of them {@code fill}. */
  public static String bar(char fill, int filled, int width) {
    return String.valueOf(fill).repeat(filled) + " ".repeat(width - filled);
  }

  private String pad(String line) {
    String padded =
        line.length() < lastLength ? line + " ".repeat(lastLength - line.length()) : line;
    lastLength = line.length();
    return padded;
  }
}
