package dev.hanlin.train.precision;

import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.dist.Group;
import java.io.PrintStream;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * The model computes in bf16 (no autocast needed); AdamW updates fp32 master copies, from the bf16
 * gradients cast to float32 one optimizer group at a time, and copies them back after each step.
 * Checkpoints hold the masters; the export is bf16. With ZeRO-1/2 each rank keeps masters (and
 * AdamW state) only for the parameters it owns ({@link #shard}): it copies those back, the
 * parallelism then broadcasts each bf16 weight from its owner, and a checkpoint gathers each master
 * from its owner ({@link OwnedMasters}).
 */
public final class MasterWeights implements Precision {
  /** Decaying groups of at most 256M elements bound the fp32 gradient copies of one kernel call. */
  static final long GROUP_CAP = 1L << 28;

  private Map<String, Tensor> masters;
  private OwnedMasters owned; // ZeRO-1/2: the masters are this rank's share; null otherwise
  private long steps; // optimizer steps taken (the same on every rank)

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

  /**
   * With ZeRO-1/2: drops the masters of parameters another rank updates; {@link #saved} then
   * gathers them from their owners over {@code group}. With one process or DDP nothing changes.
   */
  @Override
  public void shard(Predicate<String> owns, Group group) {
    OwnedMasters.Kept kept = OwnedMasters.keep(masters, owns, group);
    if (kept == null) return;
    masters = kept.masters();
    owned = kept.gatherer();
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

  /** The fp32 masters (this rank's share, with ZeRO-1/2) into the bf16 model. */
  @Override
  public void afterStep(LlamaModel model) {
    steps++;
    if (owned != null) owned.release();
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.noGrad()) {
      masters.forEach((k, v) -> model.weights().get(k).copy_(v));
    }
  }

  /**
   * The fp32 masters as a model; with ZeRO-1/2 gathered from their owners (every rank calls it for
   * a checkpoint; only the main rank, which writes the model, gets the masters: the others get
   * {@code model}).
   */
  @Override
  public LlamaModel saved(LlamaModel model) {
    LlamaConfig fp32 = model.config().withDtype(DType.F32);
    if (owned == null) return LlamaModel.fromWeights(fp32, masters);
    Map<String, Tensor> all = owned.gather(masters, model, steps);
    return all == null ? model : LlamaModel.fromWeights(fp32, all);
  }

  @Override
  public LlamaModel exported(LlamaModel model) {
    return Precision.bf16Model(model);
  }
}
