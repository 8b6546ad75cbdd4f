package dev.hanlin.train;

import dev.hanlin.data.LabelledBatch;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Tensor;
import java.util.function.Function;
import java.util.function.IntConsumer;

/**
 * How a micro-batch's forward and backward run: the plain autograd pass, or {@link
 * RecomputingBackward} ({@code gradient_checkpointing}), which also tells data parallelism as each
 * block's gradients are complete.
 */
public enum Backward {
  PLAIN {
    @Override
    Tensor run(
        LlamaModel model,
        LabelledBatch b,
        Function<Tensor, Tensor> lossSumOf,
        double perRank,
        IntConsumer afterStage) {
      Tensor logits =
          b.packed()
              ? model.forwardPacked(b.inputs(), b.positions(), b.segments())
              : model.forward(b.inputs(), null);
      Tensor loss = lossSumOf.apply(logits);
      loss.div(perRank).backward();
      return loss.detach();
    }
  },
  RECOMPUTING {
    @Override
    Tensor run(
        LlamaModel model,
        LabelledBatch b,
        Function<Tensor, Tensor> lossSumOf,
        double perRank,
        IntConsumer afterStage) {
      return RecomputingBackward.run(
              model,
              b.inputs(),
              b.packed() ? b.positions() : null,
              b.packed() ? b.segments() : null,
              logits -> lossSumOf.apply(logits).div(perRank),
              afterStage)
          .mul(perRank);
    }
  };

  /**
   * Forward and backward of {@code b}, the gradients those of {@code lossSumOf(logits) / perRank};
   * returns the summed loss (detached).
   */
  abstract Tensor run(
      LlamaModel model,
      LabelledBatch b,
      Function<Tensor, Tensor> lossSumOf,
      double perRank,
      IntConsumer afterStage);

  public static Backward of(boolean gradientCheckpointing) {
    return gradientCheckpointing ? RECOMPUTING : PLAIN;
  }
}
