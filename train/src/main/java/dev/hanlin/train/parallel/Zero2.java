package dev.hanlin.train.parallel;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.precision.Precision;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.function.ToIntFunction;

/**
 * ZeRO stage 2: as the recomputing backward finishes a stage's gradients (a layer, the head, the
 * embedding), each is summed onto its owner and freed elsewhere, so that no rank ever holds every
 * gradient; the owner updates it and broadcasts the new value. Needs the recomputing backward
 * ({@code gradient_checkpointing}), which the config checks.
 */
final class Zero2 implements Parallelism {
  private final Group group;
  private final Shards shards;
  private final ToIntFunction<String> stageOf;
  private final GradBuckets buckets; // null: one blocking reduce per weight
  private Map<Integer, Map<String, Tensor>> byStage; // trainable weights by backward stage

  /**
   * {@code bucketElements > 0}: DeepSpeed's {@code overlap_comm}, gradients reduced in buckets of
   * that many elements while backward goes on ({@link GradBuckets}); 0: one blocking reduce per
   * weight as each stage ends.
   */
  Zero2(Group group, Shards shards, ToIntFunction<String> stageOf, long bucketElements) {
    this.group = group;
    this.shards = shards;
    this.stageOf = stageOf;
    this.buckets =
        bucketElements > 0 ? new GradBuckets(group, shards::ownerOf, bucketElements) : null;
  }

  @Override
  public Group group() {
    return group;
  }

  @Override
  public boolean owns(String name) {
    return shards.owns(name);
  }

  @Override
  public void start(Map<String, Tensor> trainable) {
    group.broadcast(trainable.values(), 0);
  }

  /** {@code last} micro-batch of the step: the owners then average over the ranks. */
  @Override
  public IntConsumer afterBackwardStage(Map<String, Tensor> trainable, boolean last) {
    if (byStage == null) byStage = GradBuckets.byStage(trainable, stageOf); // the same every time
    if (buckets != null)
      return stage -> buckets.stageDone(byStage.getOrDefault(stage, Map.of()), stage == -1, last);
    return stage -> shards.reduceGrads(group, byStage.getOrDefault(stage, Map.of()), last);
  }

  /** Each rank has only its share's gradients. */
  @Override
  public Tensor globalNorm(Tensor localNorm) {
    return Shards.globalNorm(group, localNorm);
  }

  @Override
  public void afterOptimizerStep(Map<String, Tensor> trainable) {
    shards.syncParams(group, trainable);
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
}
