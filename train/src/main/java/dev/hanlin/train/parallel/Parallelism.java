package dev.hanlin.train.parallel;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.dist.Group;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.function.ToIntFunction;

/**
 * How the ranks of a run share one optimizer step: where gradients go, which rank updates which
 * parameter, and how the new values reach every rank. The loop calls the same methods whatever the
 * implementation: {@link Single} (one process), {@link Ddp} (every rank averages every gradient),
 * {@link Zero1} (DDP's gradients, each rank updates and keeps optimizer state for its share) and
 * {@link Zero2} (each gradient summed onto its owner only). Sharding the parameters themselves
 * (FSDP / ZeRO-3) is the next implementation: it would keep only its share of each weight between
 * steps, gather a block's weights before the recomputing backward walks it, and reduce-scatter its
 * gradients in {@link #afterBackwardStage}, which that backward already calls block by block.
 */
public interface Parallelism {
  Group group();

  /** Whether this rank's optimizer updates {@code name} (and keeps its state). */
  default boolean owns(String name) {
    return true;
  }

  /**
   * Once the optimizer is built: every rank starts from rank 0's weights, and the gradient
   * communication is set up over {@code trainable} (the same names, in the same order, on every
   * rank).
   */
  void start(Map<String, Tensor> trainable);

  /** Before each micro-batch's forward; {@code last}: its backward ends the step. */
  default void beforeMicroBatch(boolean last) {}

  /**
   * What the recomputing backward calls as each stage's gradients are complete (see {@code
   * RecomputingBackward}), or null when gradients need no routing during backward.
   */
  default IntConsumer afterBackwardStage(Map<String, Tensor> trainable, boolean last) {
    return null;
  }

  /** The norm of all ranks' gradients from this rank's norm of those it keeps. */
  default Tensor globalNorm(Tensor localNorm) {
    return localNorm;
  }

  /** After the optimizer step: every rank gets every new value. */
  default void afterOptimizerStep(Map<String, Tensor> trainable) {}

  /**
   * Whether each rank saves its own share of the optimizer state ({@code optimizer-rank-R-...}).
   */
  default boolean shardedOptimizerState() {
    return false;
  }

  /** A failure of forward/backward said as a communication failure where it was one. */
  default RuntimeException explain(RuntimeException e) {
    return e;
  }

  /**
   * The implementation for {@code zeroStage} on {@code group}; {@code stageOf} names the backward
   * stage of each weight (for ZeRO-2's routing). Built before the optimizer, which asks {@link
   * #owns}.
   */
  static Parallelism of(
      int zeroStage, Group group, Map<String, Tensor> trainable, ToIntFunction<String> stageOf) {
    return of(zeroStage, group, trainable, stageOf, 0);
  }

  /**
   * As {@link #of(int, Group, Map, ToIntFunction)}; {@code reduceBucket > 0}: ZeRO-2 reduces
   * gradients in buckets of that many elements, overlapped with backward (DeepSpeed's {@code
   * overlap_comm} and {@code reduce_bucket_size}).
   */
  static Parallelism of(
      int zeroStage,
      Group group,
      Map<String, Tensor> trainable,
      ToIntFunction<String> stageOf,
      long reduceBucket) {
    if (!group.isDistributed()) return new Single(group);
    if (zeroStage == 0) return new Ddp(group);
    Shards shards = Shards.of(trainable, group.dist());
    return zeroStage == 1
        ? new Zero1(group, shards)
        : new Zero2(group, shards, stageOf, reduceBucket);
  }
}
