package dev.hanlin.train.precision;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Tensor;
import dev.hanlin.train.optim.AdamW;
import dev.hanlin.train.optim.Optimizer;
import java.io.PrintStream;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.IntConsumer;
import java.util.function.Predicate;

/**
 * The number formats of a run: what the model computes in, what the optimizer updates, and what
 * checkpoints and the export hold. {@link Fp32} (everything float32), {@link Autocast} (float32
 * weights, bf16 matmuls under autocast) and {@link MasterWeights} (a bf16 model, fp32 master copies
 * that AdamW updates and copies back).
 */
public interface Precision {
  /** Whether the run computes in bf16 (evaluation runs under autocast then). */
  boolean bf16();

  /**
   * Where the run's source builds its float32 model (fresh init, model folder, checkpoint) for
   * {@link #adopt}: the run's {@code device}, or host memory for a precision that keeps the float32
   * values there, so they never occupy the device.
   */
  default Device buildOn(Device device) {
    return device;
  }

  /** The model the run trains, made from the float32 model its source built. */
  default LlamaModel adopt(LlamaModel fp32, PrintStream err) {
    return fp32;
  }

  /** Around each micro-batch's forward and backward. */
  Grad.Guard enter(Device device);

  /** What the optimizer updates, given the model's trainable weights. */
  default Map<String, Tensor> optimizerParams(Map<String, Tensor> trainable) {
    return trainable;
  }

  /**
   * The float32 values of {@code trainable}, handed to a parallelism that shards and keeps them
   * (ZeRO-3): the weights themselves, or the master copies, which this precision then no longer
   * keeps nor copies back after a step.
   */
  default Map<String, Tensor> handOverFp32(Map<String, Tensor> trainable) {
    return trainable;
  }

  /** The largest decaying optimizer group, in elements (bounds the fp32 gradient copies). */
  default long groupCap() {
    return Long.MAX_VALUE;
  }

  /**
   * AdamW's parameter groups of {@code params} this rank updates ({@code owns}): by default {@link
   * AdamW#groups} with {@link #groupCap}.
   */
  default List<AdamW.Group> optimizerGroups(
      Map<String, Tensor> params, Predicate<String> owns, double weightDecay) {
    return AdamW.groups(params, owns, groupCap(), weightDecay);
  }

  /** The optimizer the trainer drives, given the AdamW built over {@link #optimizerParams}. */
  default Optimizer optimizer(AdamW adamW, double maxGradNorm) {
    return adamW;
  }

  /**
   * The recomputing backward's stage hooks ({@code stages}, the parallelism's), with what this
   * precision needs before a stage's forward in front ({@link OffloadedMasters}: that unit's new
   * weights, while the last step's update goes on).
   */
  default IntConsumer gateUnits(IntConsumer stages) {
    return stages;
  }

  /**
   * Before the weights are used other than unit by unit through {@link #gateUnits} (a forward
   * without the recomputing backward, evaluation, checkpoints, the end of training): waits for any
   * update still under way.
   */
  default void awaitAll() {}

  /** Each optimizer parameter's gradient, or null when there is none. */
  default Function<Tensor, Tensor> gradOf(LlamaModel model) {
    return Tensor::grad;
  }

  /**
   * Once the parallelism is known: this rank's optimizer updates only what {@code owns} accepts
   * (ZeRO-1/2), so a precision that keeps per-parameter copies may drop the others ({@link
   * OffloadedMasters}).
   */
  default void shard(Predicate<String> owns, dev.hanlin.torch.dist.Group group) {}

  /**
   * What the optimizer calls with each group's updated parameters as soon as that group is done
   * (null: nothing), so that copying them back can overlap the update of the next group.
   */
  default Consumer<List<Tensor>> afterGroupStep(LlamaModel model) {
    return null;
  }

  /** After each optimizer step. */
  default void afterStep(LlamaModel model) {}

  /** The model as checkpoints hold it (float32). */
  default LlamaModel saved(LlamaModel model) {
    return model;
  }

  /** The model as the run's export holds it: bf16 when the run computed in bf16. */
  default LlamaModel exported(LlamaModel model) {
    return model;
  }

  /**
   * {@code bf16} (null: on CUDA), {@code masterWeights} (only for full-weight training: LoRA keeps
   * a frozen base and fp32 adapters).
   */
  static Precision of(Boolean bf16, boolean masterWeights, boolean lora, Device device) {
    boolean b = bf16 != null ? bf16 : device.isCuda();
    if (!b) return new Fp32();
    return masterWeights && !lora ? new MasterWeights() : new Autocast();
  }

  /** {@code model}'s weights as a bf16 model. */
  static LlamaModel bf16Model(LlamaModel model) {
    return model.withDtype(DType.BF16);
  }
}
