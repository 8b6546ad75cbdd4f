package dev.hanlin.train.optim;

import java.util.Arrays;
import java.util.Locale;

/**
 * Linear warmup from 0 to the peak, then cosine, linear or constant decay to {@code minLr} at
 * {@code totalSteps}. A pure function of the step, so a resumed run needs no scheduler state.
 */
public record LrSchedule(
    double peak, double minLr, long warmupSteps, long totalSteps, Shape shape) {
  /** The decay after warmup. */
  public enum Shape {
    COSINE,
    LINEAR,
    CONSTANT;

    public static Shape parse(String s) {
      try {
        return valueOf(s.toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "'lr_scheduler_type' must be one of "
                + Arrays.toString(values()).toLowerCase(Locale.ROOT)
                + ", got '"
                + s
                + "'");
      }
    }
  }

  public LrSchedule {
    if (warmupSteps < 0 || totalSteps <= 0)
      throw new IllegalArgumentException("bad schedule steps");
  }

  /** The learning rate for optimizer step {@code step} (0-based). */
  public double lr(long step) {
    if (step < warmupSteps) return peak * (step + 1) / warmupSteps;
    if (shape == Shape.CONSTANT) return peak;
    long decay = Math.max(1, totalSteps - warmupSteps);
    double progress = Math.min(1.0, (double) (step - warmupSteps) / decay);
    double f = shape == Shape.COSINE ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
    return minLr + (peak - minLr) * f;
  }
}
