package dev.hanlin.train.precision;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import java.io.PrintStream;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * The model computes in bf16 (no autocast needed); AdamW updates fp32 master copies, from the bf16
 * gradients cast to float32 one optimizer group at a time, and copies them back after each step.
 * Checkpoints hold the masters; the export is bf16.
 */
public final class MasterWeights implements Precision {
  /** Decaying groups of at most 256M elements bound the fp32 gradient copies of one kernel call. */
  static final long GROUP_CAP = 1L << 28;

  private Map<String, Tensor> masters;

  @Override
  public boolean bf16() {
    return true;
  }

  @Override
  public LlamaModel adopt(LlamaModel fp32, PrintStream err) {
    masters = fp32.weights();
    LlamaModel m = fp32.withDtype(DType.BF16);
    err.println("master_weights: the model computes in bf16, AdamW updates fp32 master weights");
    return m;
  }

  @Override
  public Grad.Guard enter(Device device) {
    return () -> {};
  }

  @Override
  public Map<String, Tensor> optimizerParams(Map<String, Tensor> trainable) {
    return masters;
  }

  /** ZeRO-3 keeps the masters as its float32 shards (and gathers the bf16 weights itself). */
  @Override
  public Map<String, Tensor> handOverFp32(Map<String, Tensor> trainable) {
    Map<String, Tensor> m = masters;
    masters = Map.of();
    return m;
  }

  @Override
  public long groupCap() {
    return GROUP_CAP;
  }

  @Override
  public Function<Tensor, Tensor> gradOf(LlamaModel model) {
    Map<Tensor, Tensor> modelParamOf = new IdentityHashMap<>();
    masters.forEach((k, v) -> modelParamOf.put(v, model.weights().get(k)));
    return master -> {
      Tensor g = modelParamOf.get(master).grad();
      return g == null ? null : g.toFloat();
    };
  }

  /** The fp32 masters into the bf16 model. */
  @Override
  public void afterStep(LlamaModel model) {
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.noGrad()) {
      masters.forEach((k, v) -> model.weights().get(k).copy_(v));
    }
  }

  @Override
  public LlamaModel saved(LlamaModel model) {
    return LlamaModel.fromWeights(model.config().withDtype(DType.F32), masters);
  }

  @Override
  public LlamaModel exported(LlamaModel model) {
    return Precision.bf16Model(model);
  }
}
