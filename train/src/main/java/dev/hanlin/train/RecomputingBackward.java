package dev.hanlin.train;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Autocast;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.function.Function;
import java.util.function.IntConsumer;

/**
 * Forward and backward with activation checkpointing (recompute per block), walking the model's
 * public pieces (embedding, layers, head): the forward keeps only each block's input, not its
 * activations; the backward recomputes one block at a time and backpropagates through it. Gradients
 * equal those of {@code loss(forward(ids)).backward()}; peak activation memory drops from all
 * blocks to one block. With LoRA dropout, each block's recompute replays the random state its
 * forward drew from, so both draw the same masks, and the generator ends where the forward left it.
 */
public final class RecomputingBackward {
  private RecomputingBackward() {}

  /**
   * What parameter sharding (ZeRO-3) needs around each stage, given as {@code afterBackward}: its
   * {@link #accept} says a stage's gradients are complete (as a plain {@code IntConsumer} does);
   * {@link #enter} comes before a stage's weights are used (its forward, and again its recompute
   * and backward), {@link #leave} after its forward, until its backward enters it again. Stages are
   * those of {@link #stageOf}; the embedding's is -1 and the head's the layer count.
   */
  public interface Walk extends IntConsumer {
    void enter(int stage);

    void leave(int stage);
  }

  /**
   * Runs forward and backward of {@code lossOfLogits(model(ids))}, for packed rows ({@code
   * positions} and {@code segments} as in {@link LlamaModel#forwardPacked}) or plain rows when both
   * are null; returns the loss (detached). Tells {@code afterBackward} (unless null) each time some
   * gradients are complete, with the {@link #stageOf} of their weights: the head's, then each
   * layer's from the last down, then -1 for the rest, so that data parallelism can send them on at
   * once (ZeRO-2). Call it inside the caller's step scope (and autocast, if any).
   */
  public static Tensor run(
      LlamaModel model,
      Tensor ids,
      Tensor positions,
      Tensor segments,
      Function<Tensor, Tensor> lossOfLogits,
      IntConsumer afterBackward) {
    return runTop(
        model,
        ids,
        positions,
        segments,
        xl -> {
          Tensor loss = lossOfLogits.apply(model.head(xl));
          loss.backward();
          return loss.detach();
        },
        afterBackward);
  }

  /**
   * As {@link #run}, with the top of the graph given as {@code top}: from the last block's output
   * (a leaf that requires grad) it runs the head's forward and backward, as {@link
   * LossHead#backward} does chunk by chunk, and returns the loss (detached).
   */
  public static Tensor runTop(
      LlamaModel model,
      Tensor ids,
      Tensor positions,
      Tensor segments,
      Function<Tensor, Tensor> top,
      IntConsumer afterBackward) {
    IntConsumer done = afterBackward != null ? afterBackward : stage -> {};
    Walk walk = afterBackward instanceof Walk w ? w : null; // null: no weights to fetch
    int layers = model.layers().size();
    long t = ids.size(1);
    if (walk != null) walk.enter(-1);
    Tensor x0 = model.embed(ids); // (B, T, C), its small graph kept for the end
    if (walk != null) walk.leave(-1);
    LlamaModel.Positions p = model.positions(0, t, positions, segments, x0.dtype(), x0.device());
    // Dropout draws only while autograd records, so with it the forward records too (one block's
    // graph at a time, dropped at once) and each block notes the random state it started from.
    boolean dropout = model.lora() != null && model.lora().config().dropout() > 0;
    Device device = x0.device();
    Tensor[] rng = new Tensor[layers];
    Tensor[] inputs = new Tensor[layers + 1]; // block inputs, without graphs
    inputs[0] = x0.detach();
    for (int i = 0; i < layers; i++) {
      try (Scope s = Scope.open();
          Grad.Guard g = dropout ? () -> {} : Grad.noGrad()) {
        if (dropout) rng[i] = s.keep(Torch.rngState(device));
        if (walk != null) walk.enter(i);
        inputs[i + 1] = s.keep(model.layers().get(i).forward(inputs[i], p, null).detach());
      }
      if (walk != null) walk.leave(i); // after the scope: the block's graph (if any) is gone
      // under autocast, the block's bf16 weight copies would stay cached until the step ends: a
      // second copy of the model (12.6 GiB at 7B) for nothing, as each is used once per pass
      Autocast.clearCache();
    }
    Tensor after = dropout ? Torch.rngState(device) : null;
    Tensor lossValue;
    Tensor grad;
    if (walk != null) walk.enter(layers);
    try (Scope s = Scope.open()) {
      Tensor xl = inputs[layers].detach().requiresGrad(true);
      lossValue = s.keep(top.apply(xl));
      grad = s.keep(xl.grad());
    }
    done.accept(layers);
    for (int i = layers - 1; i >= 0; i--) {
      try (Scope s = Scope.open()) {
        if (dropout) Torch.setRngState(device, rng[i]);
        if (walk != null) walk.enter(i);
        Tensor xi = inputs[i].detach().requiresGrad(true);
        model.layers().get(i).forward(xi, p, null).backward(grad);
        grad = s.keep(xi.grad());
      }
      Autocast.clearCache();
      done.accept(i); // after the scope: the recomputed activations are freed by now
    }
    if (dropout) Torch.setRngState(device, after);
    if (x0.requiresGrad()) { // not with a frozen embedding (LoRA)
      if (walk != null) walk.enter(-1); // the weight's gradient accumulates in its shape
      x0.backward(grad);
    }
    done.accept(-1);
    return lossValue;
  }

  /**
   * When {@link #run} has finished the gradient of the weight (or LoRA adapter) named {@code name}:
   * layer {@code i}'s weights after that layer's backward ({@code i}), the final norm and an untied
   * lm_head after the head's ({@code layers}), the embedding (which a tied lm_head adds to) at the
   * end ({@code -1}).
   */
  public static int stageOf(String name, int layers) {
    String layer = "model.layers.";
    if (name.startsWith(layer))
      return Integer.parseInt(name.substring(layer.length(), name.indexOf('.', layer.length())));
    if (name.equals("model.norm.weight") || name.equals("lm_head.weight")) return layers;
    return -1;
  }
}
