package dev.hanlin.train.precision;

import dev.hanlin.train.RecomputingBackward;
import java.util.function.IntConsumer;

/**
 * The recomputing backward's stage hooks with offload's pipelined update in front: entering a stage
 * (before its forward) first waits for that unit's new weights; everything else goes on to the
 * parallelism's hooks ({@code inner}) as before.
 */
final class UnitGate implements RecomputingBackward.Walk {
  private final OffloadPipeline pipeline;
  private final IntConsumer inner;
  private final RecomputingBackward.Walk innerWalk; // null: the parallelism fetches no weights

  UnitGate(OffloadPipeline pipeline, IntConsumer inner) {
    this.pipeline = pipeline;
    this.inner = inner;
    this.innerWalk = inner instanceof RecomputingBackward.Walk w ? w : null;
  }

  @Override
  public void enter(int stage) {
    pipeline.awaitUnit(stage + 1);
    if (innerWalk != null) innerWalk.enter(stage);
  }

  @Override
  public void leave(int stage) {
    if (innerWalk != null) innerWalk.leave(stage);
  }

  @Override
  public void accept(int stage) {
    if (inner != null) inner.accept(stage);
  }
}
