package dev.hanlin.train.explicit;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.fused.BlockOps;
import dev.hanlin.torch.fused.Grads;
import dev.hanlin.torch.fused.Kernels;
import dev.hanlin.torch.fused.Sdpa;
import dev.hanlin.train.RecomputingBackward;
import java.util.function.IntConsumer;

/**
 * A micro-batch's forward and backward without autograd: the embedding, each {@link BlockPass},
 * then {@link HeadPass} (norm, head and loss by chunks), and back. With {@code recompute} (gradient
 * checkpointing) only the block inputs are kept and each block's forward runs again just before its
 * backward; without, every block's activations are kept. GEMMs run in autocast's dtype when
 * autocast is on (by explicit casts, autocast suspended), else in the model's. The gradients, added
 * to each weight's {@code .grad}, are those of {@code scale · Σ cross-entropy}. Legend: B = batch,
 * T = tokens, C = hidden.
 */
public final class ExplicitBackward {
  private ExplicitBackward() {}

  /**
   * Runs forward and backward of the summed cross-entropy of {@code model(ids)} against {@code
   * labels} (B·T; -100 ignored) times {@code scale}, for packed rows ({@code positions}, {@code
   * segments} as in {@link LlamaModel#forwardPacked}) or plain rows when both are null; returns the
   * summed loss (0-dim float32, unscaled). Tells {@code afterStage} (unless null) as {@code
   * RecomputingBackward} does: the head's stage ({@code layers}), each layer's from the last down,
   * then -1; and when it is a {@code RecomputingBackward.Walk}, enters and leaves the stages in
   * that pass's order too.
   */
  public static Tensor run(
      LlamaModel model,
      Tensor ids,
      Tensor positions,
      Tensor segments,
      Tensor labels,
      double scale,
      boolean recompute,
      IntConsumer afterStage) {
    return run(model, ids, positions, segments, labels, scale, recompute, afterStage, 0);
  }

  /** As above with {@code chunkRows} rows of logits at a time (0: up to 256 MiB of them). */
  static Tensor run(
      LlamaModel model,
      Tensor ids,
      Tensor positions,
      Tensor segments,
      Tensor labels,
      double scale,
      boolean recompute,
      IntConsumer afterStage,
      int chunkRows) {
    IntConsumer done = afterStage != null ? afterStage : stage -> {};
    // enter/leave as RecomputingBackward calls them: offload's pipelined update waits there for a
    // unit's new weights before its forward
    RecomputingBackward.Walk walk = afterStage instanceof RecomputingBackward.Walk w ? w : null;
    Device dev = model.device();
    DType ac = Kernels.autocastDtype(dev);
    DType cd = ac != null ? ac : model.dtype();
    BlockOps ops = Kernels.forDevice(dev);
    int layers = model.layers().size();
    int rows = chunkRows > 0 ? chunkRows : HeadPass.defaultChunkRows(model.config().vocabSize());
    try (Grad.Guard ng = Grad.noGrad();
        Grad.Guard off = Kernels.suspendAutocast(dev)) {
      if (walk != null) walk.enter(-1);
      Tensor x0 = model.embed(ids); // (B, T, C)
      if (walk != null) walk.leave(-1);
      LlamaModel.Positions p =
          model.positions(0, ids.size(1), positions, segments, x0.dtype(), dev);
      var ctx =
          new BlockPass.Context(
              p.cos(), p.sin(), p.mask() == null ? null : Sdpa.bias(p.mask(), cd));
      BlockPass[] passes = new BlockPass[layers];
      for (int i = 0; i < layers; i++)
        passes[i] = new BlockPass(model.layers().get(i), model.config(), ops, cd);
      Tensor[] inputs = new Tensor[layers + 1];
      BlockActivations[] kept = new BlockActivations[layers];
      inputs[0] = x0;
      // LoRA dropout: each recompute replays the generator state its block's forward started
      // from, so both draw the same masks, and the generator ends where the forward left it (as
      // RecomputingBackward does for autograd); kept activations keep their masks instead
      boolean replay = recompute && model.lora() != null && model.lora().config().dropout() > 0;
      Tensor[] rng = new Tensor[layers];
      for (int i = 0; i < layers; i++) {
        try (Scope s = Scope.open()) {
          if (replay) rng[i] = s.keep(Torch.rngState(dev));
          if (walk != null) walk.enter(i);
          BlockActivations a = passes[i].forward(inputs[i], ctx);
          if (recompute) inputs[i + 1] = s.keep(a.out());
          else inputs[i + 1] = (kept[i] = a.keptBy(s)).out();
        }
        if (walk != null) walk.leave(i);
      }
      Tensor after = replay ? Torch.rngState(dev) : null;
      Tensor loss, grad;
      if (walk != null) walk.enter(layers);
      try (Scope s = Scope.open()) {
        HeadPass.Result r = HeadPass.run(model, inputs[layers], labels, scale, ops, cd, rows);
        loss = s.keep(r.lossSum());
        grad = s.keep(r.dx());
      }
      done.accept(layers);
      for (int i = layers - 1; i >= 0; i--) {
        try (Scope s = Scope.open()) {
          if (replay) Torch.setRngState(dev, rng[i]);
          if (walk != null) walk.enter(i);
          BlockActivations a = recompute ? passes[i].forward(inputs[i], ctx, true) : kept[i];
          grad = s.keep(passes[i].backward(a, grad, ctx));
        }
        kept[i] = null;
        done.accept(i);
      }
      if (replay) Torch.setRngState(dev, after);
      Tensor embed = model.weights().get("model.embed_tokens.weight");
      if (embed.requiresGrad()) {
        if (walk != null) walk.enter(-1);
        Grads.accumulateRows(embed, ids.reshape(-1), grad.reshape(-1, grad.size(2)));
      }
      done.accept(-1);
      return loss;
    }
  }
}
