package dev.hanlin.train;

import dev.hanlin.data.LabelledBatch;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Tensor;
import dev.hanlin.train.explicit.ExplicitBackward;
import java.util.function.IntConsumer;

/**
 * How a micro-batch's forward and backward run: the plain autograd pass, {@link
 * RecomputingBackward} ({@code gradient_checkpointing}), which also tells data parallelism as each
 * block's gradients are complete, or the hand-written {@link ExplicitBackward} ({@code
 * explicit_backward}), keeping every block's activations or, with checkpointing, recomputing them.
 * The autograd passes end in the {@link LossHead}: whole logits, or chunks of rows backpropagated
 * one at a time ({@code loss_chunk_tokens}); the explicit ones chunk the head themselves.
 */
public enum Backward {
  PLAIN {
    @Override
    Tensor run(
        LlamaModel model, LabelledBatch b, LossHead head, double perRank, IntConsumer afterStage) {
      if (head.chunked()) {
        Tensor x =
            b.packed()
                ? model.hidden(b.inputs(), b.positions(), b.segments())
                : model.hidden(b.inputs(), null, null);
        return head.backward(model, x, perRank); // and on through x's graph
      }
      Tensor logits =
          b.packed()
              ? model.forwardPacked(b.inputs(), b.positions(), b.segments())
              : model.forward(b.inputs(), null);
      Tensor loss = head.sumOf(logits);
      loss.div(perRank).backward();
      return loss.detach();
    }
  },
  RECOMPUTING {
    @Override
    Tensor run(
        LlamaModel model, LabelledBatch b, LossHead head, double perRank, IntConsumer afterStage) {
      Tensor positions = b.packed() ? b.positions() : null;
      Tensor segments = b.packed() ? b.segments() : null;
      if (head.chunked())
        return RecomputingBackward.runTop(
            model,
            b.inputs(),
            positions,
            segments,
            x -> head.backward(model, x, perRank),
            afterStage);
      return RecomputingBackward.run(
              model,
              b.inputs(),
              positions,
              segments,
              logits -> head.sumOf(logits).div(perRank),
              afterStage)
          .mul(perRank);
    }
  },
  /** The explicit backward keeping every block's activations. */
  EXPLICIT {
    @Override
    Tensor run(
        LlamaModel model, LabelledBatch b, LossHead head, double perRank, IntConsumer afterStage) {
      return explicit(model, b, perRank, false, afterStage);
    }
  },
  /** The explicit backward recomputing each block's forward before its backward. */
  EXPLICIT_RECOMPUTING {
    @Override
    Tensor run(
        LlamaModel model, LabelledBatch b, LossHead head, double perRank, IntConsumer afterStage) {
      return explicit(model, b, perRank, true, afterStage);
    }
  };

  /**
   * The explicit passes compute the trainer's loss, the summed cross-entropy of the targets, by
   * themselves (by chunks of rows, never the whole logits), not through {@code head}.
   */
  private static Tensor explicit(
      LlamaModel model, LabelledBatch b, double perRank, boolean recompute, IntConsumer after) {
    return ExplicitBackward.run(
        model,
        b.inputs(),
        b.packed() ? b.positions() : null,
        b.packed() ? b.segments() : null,
        b.targets().reshape(-1),
        1 / perRank,
        recompute,
        after);
  }

  /**
   * Forward and backward of {@code b}, the gradients those of {@code head}'s loss sum / {@code
   * perRank}; returns the summed loss (detached).
   */
  abstract Tensor run(
      LlamaModel model, LabelledBatch b, LossHead head, double perRank, IntConsumer afterStage);

  /** Whether this is one of the explicit backwards (gradients written without autograd). */
  public boolean isExplicit() {
    return this == EXPLICIT || this == EXPLICIT_RECOMPUTING;
  }

  /**
   * Whether the pass enters each stage ({@code RecomputingBackward.Walk}) before using its weights:
   * all but the plain autograd pass.
   */
  public boolean walksStages() {
    return this != PLAIN;
  }

  public static Backward of(boolean gradientCheckpointing) {
    return gradientCheckpointing ? RECOMPUTING : PLAIN;
  }

  /** With {@code explicit}, the explicit backward (recomputing with checkpointing). */
  public static Backward of(boolean gradientCheckpointing, boolean explicit) {
    if (!explicit) return of(gradientCheckpointing);
    return gradientCheckpointing ? EXPLICIT_RECOMPUTING : EXPLICIT;
  }
}
