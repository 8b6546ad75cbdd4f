/**
 * What the user sees of a training run, as {@link dev.hanlin.train.metrics.TrainingListener}s that
 * hang off the training loop: the live progress line ({@link
 * dev.hanlin.train.metrics.ProgressListener}, with {@link dev.hanlin.train.metrics.Mfu}), {@code
 * metrics.jsonl} ({@link dev.hanlin.train.metrics.JsonlListener}), TensorBoard event files written
 * by hand ({@link dev.hanlin.train.metrics.TensorBoardListener}, {@link
 * dev.hanlin.train.metrics.EventFile}) and {@code loss.png} ({@link
 * dev.hanlin.train.metrics.PlotListener}, {@link dev.hanlin.train.metrics.LossPlot}). {@link
 * dev.hanlin.train.metrics.Listeners} fans one call out to several. All of them survive a resume:
 * files continue without duplicate steps.
 */
package dev.hanlin.train.metrics;
