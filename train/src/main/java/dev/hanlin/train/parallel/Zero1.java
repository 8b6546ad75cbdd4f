package dev.hanlin.train.parallel;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.precision.Precision;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.function.ToIntFunction;

/**
 * ZeRO stage 1: gradients averaged in full on every rank (as {@link Ddp}), but each rank keeps the
 * optimizer state of, and updates, only the parameters {@link Shards} gives it; the new values are
 * then broadcast from their owners.
 */
final class Zero1 implements Parallelism {
  private final Ddp ddp;
  private final Shards shards;

  /** {@code explicitStages}: as {@link Ddp}'s (null: autograd's backward). */
  Zero1(Group group, Shards shards, ToIntFunction<String> explicitStages) {
    this.ddp = new Ddp(group, explicitStages);
    this.shards = shards;
  }

  @Override
  public Group group() {
    return ddp.group();
  }

  @Override
  public boolean owns(String name) {
    return shards.owns(name);
  }

  @Override
  public void start(Map<String, Tensor> trainable) {
    ddp.start(trainable);
  }

  @Override
  public void beforeMicroBatch(boolean last) {
    ddp.beforeMicroBatch(last);
  }

  @Override
  public IntConsumer afterBackwardStage(Map<String, Tensor> trainable, boolean last) {
    return ddp.afterBackwardStage(trainable, last);
  }

  @Override
  public void afterOptimizerStep(Map<String, Tensor> trainable) {
    shards.syncParams(group(), trainable);
  }

  @Override
  public boolean shardedOptimizerState() {
    return true;
  }

  /**
   * Every rank first asks for the saved model: a precision that keeps only this rank's masters
   * gathers them then, together (all ranks must), for the main rank's export to check. The export
   * itself is the main rank's, as without ZeRO.
   */
  @Override
  public void export(LlamaModel model, Precision precision, ModelWriter write)
      throws java.io.IOException {
    if (model.lora() == null) precision.saved(model);
    Parallelism.super.export(model, precision, write);
  }

  @Override
  public RuntimeException explain(RuntimeException e) {
    return ddp.explain(e);
  }
}
