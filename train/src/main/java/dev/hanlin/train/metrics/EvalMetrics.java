package dev.hanlin.train.metrics;

/**
 * One evaluation on the validation split.
 *
 * @param step the training step the evaluation ran after
 * @param loss mean loss over the unmasked tokens
 * @param perplexity {@code exp(loss)}
 * @param accuracy shifted-argmax token accuracy in [0, 1]
 * @param tokens unmasked tokens evaluated
 */
public record EvalMetrics(long step, double loss, double perplexity, double accuracy, long tokens) {

  /** Metrics with perplexity derived from the loss. */
  public static EvalMetrics of(long step, double loss, double accuracy, long tokens) {
    return new EvalMetrics(step, loss, Math.exp(loss), accuracy, tokens);
  }
}
