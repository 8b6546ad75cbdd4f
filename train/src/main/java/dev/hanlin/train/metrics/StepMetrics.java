package dev.hanlin.train.metrics;

/**
 * What one optimizer step reports to the listeners. {@code loss} and {@code gradNorm} are NaN on a
 * skipped step (non-finite loss or gradient); {@code mfu} is NaN where the device's peak is unknown
 * (CPU).
 *
 * @param step the step just finished, 1-based
 * @param maxSteps the step the run ends at
 * @param loss mean loss over the step's tokens
 * @param lr the learning rate the step used
 * @param gradNorm global gradient norm before clipping
 * @param tokens tokens this step consumed, over all ranks and micro-batches
 * @param seconds wall time of this step
 * @param tokensPerSecond throughput of this step
 * @param mfu model FLOPs utilization in [0, 1], or NaN
 * @param skipped true when the update was skipped (NaN/Inf guard)
 */
public record StepMetrics(
    long step,
    long maxSteps,
    double loss,
    double lr,
    double gradNorm,
    long tokens,
    double seconds,
    double tokensPerSecond,
    double mfu,
    boolean skipped) {

  public StepMetrics {
    if (step < 0) throw new IllegalArgumentException("step must be >= 0, got " + step);
    if (tokens < 0) throw new IllegalArgumentException("tokens must be >= 0, got " + tokens);
  }
}
