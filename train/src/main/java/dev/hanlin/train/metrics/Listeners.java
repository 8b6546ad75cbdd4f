package dev.hanlin.train.metrics;

import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

/**
 * Several listeners as one. Every listener sees every call, in order, even when an earlier one
 * throws; the first failure is rethrown afterwards with the others suppressed, so one broken writer
 * neither hides the others' output nor fails silently.
 */
public final class Listeners implements TrainingListener {
  private final List<TrainingListener> all;

  private Listeners(List<TrainingListener> all) {
    this.all = List.copyOf(all);
  }

  /** The listeners, called in this order. */
  public static Listeners of(TrainingListener... listeners) {
    return new Listeners(List.of(listeners));
  }

  /** The listeners, called in this order. */
  public static Listeners of(List<? extends TrainingListener> listeners) {
    return new Listeners(List.copyOf(listeners));
  }

  /** The listeners, in call order. */
  public List<TrainingListener> listeners() {
    return all;
  }

  @Override
  public void onStart(RunInfo info) {
    each(l -> l.onStart(info));
  }

  @Override
  public void onStep(StepMetrics m) {
    each(l -> l.onStep(m));
  }

  @Override
  public void onEval(EvalMetrics m) {
    each(l -> l.onEval(m));
  }

  @Override
  public void onCheckpoint(long step, Path dir) {
    each(l -> l.onCheckpoint(step, dir));
  }

  @Override
  public void onEnd() {
    each(TrainingListener::onEnd);
  }

  private void each(Consumer<TrainingListener> call) {
    RuntimeException first = null;
    for (TrainingListener l : all) {
      try {
        call.accept(l);
      } catch (RuntimeException e) {
        if (first == null) first = e;
        else first.addSuppressed(e);
      }
    }
    if (first != null) throw first;
  }
}
