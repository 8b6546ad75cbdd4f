package dev.hanlin.train.parallel;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.torch.optim.FusedAdamW;
import dev.hanlin.train.Checkpoints;
import dev.hanlin.train.optim.AdamW;
import dev.hanlin.train.optim.Optimizer;
import dev.hanlin.train.precision.Precision;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.function.ToIntFunction;

/**
 * How the ranks of a run share one optimizer step: where gradients go, which rank updates which
 * parameter, and how the new values reach every rank. The loop calls the same methods whatever the
 * implementation: {@link Single} (one process), {@link Ddp} (every rank averages every gradient),
 * {@link Zero1} (DDP's gradients, each rank updates and keeps optimizer state for its share),
 * {@link Zero2} (each gradient summed onto its owner only) and {@link Zero3} (the parameters too:
 * each rank keeps its shard of every block between steps, gathers a block's weights as the
 * recomputing backward walks it, and reduce-scatters its gradients as its backward ends).
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

  /**
   * The optimizer of the run: by default AdamW over the precision's optimizer parameters of {@code
   * trainable} that this rank {@link #owns}; with ZeRO-3 over this rank's shards.
   */
  default AdamW optimizer(
      Precision precision,
      LlamaModel model,
      Map<String, Tensor> trainable,
      double weightDecay,
      FusedAdamW.Betas betas,
      double maxGradNorm) {
    return new AdamW(
        precision.optimizerGroups(precision.optimizerParams(trainable), this::owns, weightDecay),
        betas,
        maxGradNorm,
        precision.gradOf(model),
        trainable.values());
  }

  /**
   * Around a use of the whole model outside the training step (evaluation): ZeRO-3 gathers every
   * weight for it and drops them when closed. Every rank must call it.
   */
  default Grad.Guard wholeModel() {
    return () -> {};
  }

  /**
   * The model's and the optimizer's parts of a checkpoint: the trainable weights as the precision
   * saves them (or the LoRA adapter) and the optimizer state, whole or this rank's share.
   */
  default Map<String, Checkpoints.Part> checkpointParts(
      LlamaModel model, Precision precision, Optimizer optimizer) {
    Map<String, Checkpoints.Part> parts = new LinkedHashMap<>();
    parts.put(
        "model",
        model.lora() != null
            ? Checkpoints.Weights.of(model.lora())
            : Checkpoints.Weights.of(precision.saved(model)));
    parts.put("optimizer", Checkpoints.Part.optimizer(optimizer.state(), shardedOptimizerState()));
    return parts;
  }

  /**
   * Loads the optimizer's part of {@code ck} (with sharded state, only this rank's share, from
   * whichever files hold it).
   */
  default void restoreOptimizer(Checkpoints.Loaded ck, Optimizer optimizer) throws IOException {
    Map<String, Tensor> saved = ck.optimizer(optimizer.state().keySet());
    optimizer.loadState(saved);
    saved.values().forEach(Tensor::release); // the host copies read from the files
  }

  /** How the run's final folder is written: the task's export, or its parts. */
  interface ModelWriter {
    /** The whole folder (an HF model, or a LoRA adapter) from a model in memory. */
    void write(LlamaModel model, Precision precision) throws IOException;

    /** The folder, for weights written piece by piece. */
    java.nio.file.Path folder();

    /** The largest safetensors file, in bytes. */
    long maxShardBytes();

    /** The rest of the folder (the tokenizer) once its weights are in. */
    void finish() throws IOException;
  }

  /**
   * The run's export, every rank calling it: the main rank writes {@code model}; with ZeRO-3 the
   * weights are gathered unit by unit and written as they come.
   */
  default void export(LlamaModel model, Precision precision, ModelWriter write) throws IOException {
    if (group().dist().isMain()) write.write(model, precision);
  }

  /** A failure of forward/backward said as a communication failure where it was one. */
  default RuntimeException explain(RuntimeException e) {
    return e;
  }

  /**
   * ZeRO-3 on {@code group} (also for one process): {@code model}'s weights sharded from {@code
   * fp32}, their float32 values (the weights, or master copies), which are then emptied; says on
   * {@code err} what each rank keeps.
   */
  static Parallelism sharded(
      Group group, LlamaModel model, Map<String, Tensor> fp32, java.io.PrintStream err) {
    return new Zero3(group, model, fp32, err);
  }

  /**
   * ZeRO-3 on {@code group} with {@code model}'s values coming one unit at a time from {@code fp32}
   * (a model whose weights are placeholders: see {@code ShardedModel}), so that setting up never
   * holds the whole model.
   */
  static Parallelism sharded(
      Group group, LlamaModel model, UnitWeights fp32, java.io.PrintStream err) {
    return new Zero3(group, model, fp32, err);
  }

  /**
   * ZeRO-3 of a LoRA run on {@code group} (also for one process): {@code model}'s frozen base
   * sharded, its adapters replicated with their gradients averaged ({@link Zero3Lora}).
   */
  static Parallelism shardedLora(Group group, LlamaModel model, java.io.PrintStream err) {
    return new Zero3Lora(group, model, err);
  }

  /**
   * The implementation for {@code zeroStage} (0 to 2; see {@link #sharded} for 3) on {@code group};
   * {@code stageOf} names the backward stage of each weight (for ZeRO-2's routing). Built before
   * the optimizer, which asks {@link #owns}.
   */
  static Parallelism of(
      int zeroStage, Group group, Map<String, Tensor> trainable, ToIntFunction<String> stageOf) {
    return of(zeroStage, group, trainable, stageOf, 0, false);
  }

  /**
   * As {@link #of(int, Group, Map, ToIntFunction)}; {@code reduceBucket > 0}: ZeRO-2 reduces
   * gradients in buckets of that many elements, overlapped with backward (DeepSpeed's {@code
   * overlap_comm} and {@code reduce_bucket_size}); {@code explicitBackward}: the run takes the
   * explicit backward, whose gradients DDP and ZeRO-1 then all-reduce by backward stages.
   */
  static Parallelism of(
      int zeroStage,
      Group group,
      Map<String, Tensor> trainable,
      ToIntFunction<String> stageOf,
      long reduceBucket,
      boolean explicitBackward) {
    if (!group.isDistributed()) return new Single(group);
    ToIntFunction<String> explicitStages = explicitBackward ? stageOf : null;
    if (zeroStage == 0) return new Ddp(group, explicitStages);
    Shards shards = Shards.of(trainable, group.dist());
    return zeroStage == 1
        ? new Zero1(group, shards, explicitStages)
        : new Zero2(group, shards, stageOf, reduceBucket);
  }
}
