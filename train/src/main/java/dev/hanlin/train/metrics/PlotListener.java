package dev.hanlin.train.metrics;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Collects train and eval losses and draws {@code <output>/loss.png} at the end ({@link LossPlot}).
 * A resumed run first reads the earlier points back from {@code metrics.jsonl}, so the picture
 * shows the whole run, not only its last leg.
 */
public final class PlotListener implements TrainingListener {
  /** The picture's name in the output folder. */
  public static final String FILE_NAME = "loss.png";

  private final int width, height;
  private final List<LossPlot.Point> train = new ArrayList<>(), eval = new ArrayList<>();
  private Path png;
  private String title;

  /** A {@value LossPlot#WIDTH}×{@value LossPlot#HEIGHT} picture. */
  public PlotListener() {
    this(LossPlot.WIDTH, LossPlot.HEIGHT);
  }

  /** A picture of this size in pixels. */
  public PlotListener(int width, int height) {
    if (width <= 0 || height <= 0)
      throw new IllegalArgumentException("plot size must be positive: " + width + "x" + height);
    this.width = width;
    this.height = height;
  }

  /** Where the picture goes, null before {@link #onStart}. */
  public Path file() {
    return png;
  }

  @Override
  public void onStart(RunInfo info) {
    png = info.outputDir().resolve(FILE_NAME);
    title = info.name() + " loss";
    train.clear();
    eval.clear();
    Path jsonl = info.outputDir().resolve(JsonlListener.FILE_NAME);
    if (info.resumed() && Files.exists(jsonl)) {
      try {
        LossPlot.Curves earlier = LossPlot.read(jsonl);
        earlier.train().stream().filter(p -> p.step() <= info.startStep()).forEach(train::add);
        earlier.eval().stream().filter(p -> p.step() <= info.startStep()).forEach(eval::add);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read earlier losses from " + jsonl, e);
      } catch (LinkageError e) {
        // a Java runtime without java.desktop cannot load LossPlot at all (it failed a resumed
        // LoRA run on the GPU machine); the picture is skipped at the end with a warning anyway
      }
    }
  }

  @Override
  public void onStep(StepMetrics m) {
    if (!m.skipped()) train.add(new LossPlot.Point(m.step(), m.loss()));
  }

  @Override
  public void onEval(EvalMetrics m) {
    // a resumed finished run evaluates its last step again: one point
    if (eval.stream().noneMatch(p -> p.step() == m.step()))
      eval.add(new LossPlot.Point(m.step(), m.loss()));
  }

  @Override
  public void onEnd() {
    if (png == null) return;
    try {
      LossPlot.write(png, title, train, eval, width, height);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + png, e);
    } catch (LinkageError e) {
      // A trimmed Java runtime without java.desktop (such as the jlinked GPU runtime here) cannot
      // draw; the run itself succeeded, and metrics.jsonl holds the points (LossPlot.fromJsonl).
      System.err.println(
          "loss plot skipped: this Java runtime lacks java.desktop ("
              + e
              + "); draw it later from metrics.jsonl");
    }
  }
}
