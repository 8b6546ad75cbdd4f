package dev.hanlin.train.metrics;

import java.nio.file.Path;

/**
 * What the training loop tells the outside world. The loop stays short; progress, files and plots
 * hang off it as listeners. Called on the main rank only, on the training thread.
 */
public interface TrainingListener {

  /** Before the first step (of this process: after a resume too). */
  default void onStart(RunInfo info) {}

  /** After every optimizer step, skipped ones included. */
  default void onStep(StepMetrics m) {}

  /** After every evaluation. */
  default void onEval(EvalMetrics m) {}

  /** After a checkpoint folder has been written completely. */
  default void onCheckpoint(long step, Path dir) {}

  /** At the end of the run; listeners close their files here. */
  default void onEnd() {}
}
