package dev.hanlin.train.hooks;

import java.io.PrintStream;

/**
 * Counts the streak of skipped steps (non-finite loss or gradient norm: the optimizer kernel skips
 * them) and stops the run when it reaches {@code max_nonfinite_steps}.
 */
public final class NonFiniteGuard {
  private final int maxNonfinite;
  private final PrintStream err;

  public NonFiniteGuard(int maxNonfinite, PrintStream err) {
    this.maxNonfinite = maxNonfinite;
    this.err = err;
  }

  /**
   * After step {@code step} was reported: when it was skipped (the streak of skipped steps {@code
   * streak} > 0) says so, and stops the run at the limit.
   */
  public void check(long step, float loss, float norm, int streak) {
    if (streak == 0) return;
    err.printf(
        "%nstep %d: loss %s, grad norm %s: skipped (%d in a row)%n", step, loss, norm, streak);
    if (streak >= maxNonfinite)
      throw new IllegalStateException(
          streak
              + " steps in a row had a non-finite loss or gradient norm (max_nonfinite_steps="
              + maxNonfinite
              + "); lower learning_rate or check the data");
  }
}
