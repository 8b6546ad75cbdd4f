package dev.hanlin.train.metrics;

import java.nio.file.Path;
import java.util.Objects;

/**
 * What listeners learn at the start of a run.
 *
 * @param name the run's name (titles, logs)
 * @param maxSteps the step the run ends at
 * @param startStep the last step already done: 0 for a fresh run, the checkpoint's step on resume
 * @param outputDir where the run writes its files
 * @param peakFlopsPerSecond peak of all devices of the run together (see {@link Mfu}), NaN if
 *     unknown
 * @param flopsPerToken training FLOPs per token (see {@link Mfu#flopsPerToken})
 */
public record RunInfo(
    String name,
    long maxSteps,
    long startStep,
    Path outputDir,
    double peakFlopsPerSecond,
    double flopsPerToken) {

  public RunInfo {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(outputDir, "outputDir");
    if (startStep < 0 || startStep > maxSteps)
      throw new IllegalArgumentException(
          "startStep " + startStep + " outside [0, maxSteps=" + maxSteps + "]");
  }

  /** True when this run continues an earlier one from a checkpoint. */
  public boolean resumed() {
    return startStep > 0;
  }
}
