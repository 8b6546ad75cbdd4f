package dev.hanlin.train.metrics;

/**
 * Exponential moving average with bias correction (as TensorBoard's smoothing and Adam's moments):
 * the first values are not pulled towards zero. Non-finite values are ignored.
 */
public final class Ema {
  private final double beta;
  private double biased;
  private long count;

  /** An average that keeps {@code beta} of the old value each step, beta in [0, 1). */
  public Ema(double beta) {
    if (!(beta >= 0 && beta < 1))
      throw new IllegalArgumentException("beta must be in [0, 1), got " + beta);
    this.beta = beta;
  }

  /** Adds a value (ignored if NaN or infinite) and returns the smoothed value. */
  public double add(double x) {
    if (Double.isFinite(x)) {
      biased = beta * biased + (1 - beta) * x;
      count++;
    }
    return value();
  }

  /** The smoothed value, NaN before the first finite value. */
  public double value() {
    return count == 0 ? Double.NaN : biased / (1 - Math.pow(beta, count));
  }

  /** Smooths a whole series ({@code NaN} entries stay NaN and do not enter the average). */
  public static double[] smooth(double[] ys, double beta) {
    Ema e = new Ema(beta);
    double[] out = new double[ys.length];
    for (int i = 0; i < ys.length; i++) out[i] = Double.isFinite(ys[i]) ? e.add(ys[i]) : Double.NaN;
    return out;
  }
}
