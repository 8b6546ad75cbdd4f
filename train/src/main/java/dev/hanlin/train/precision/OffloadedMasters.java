package dev.hanlin.train.precision;

import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.RecomputingBackward;
import dev.hanlin.train.optim.AdamW;
import dev.hanlin.train.optim.Optimizer;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.IntConsumer;
import java.util.function.Predicate;

/**
 * DeepSpeed's ZeRO-Offload ({@code offload_optimizer: cpu}): the model computes in bf16 on its
 * device, while the fp32 master weights and AdamW's moments live in host memory (pinned where CUDA
 * is, so copies run on the copy engines without staging). Each step the bf16 gradients come to the
 * host (pinned, all at once, one wait), libtorch's CPU {@code _fused_adamw_} updates the masters
 * one optimizer group at a time, and each group's new values are copied back to the bf16 weights as
 * soon as that group is done: from pinned memory the copy is asynchronous, so the GPU's copy engine
 * moves group {@code i} while the CPU updates group {@code i+1}, and the last group's copy while
 * the host queues the next forward. That is the unpipelined update ({@code
 * offload_optimizer_pipeline: false}); by default it is pipelined ({@link PipelinedUpdate}): the
 * update runs unit by unit (embedding, each block, head) on a background thread while the GPU runs
 * the next forward, whose unit {@code i} waits only for unit {@code i}'s new weights ({@link
 * #gateUnits}). DeepSpeed's one-step-delayed update is not done. Either way the same math as {@link
 * MasterWeights} (gradients cast to float32, the same kernel on float32 masters), so on a CPU run
 * the three are bitwise equal.
 *
 * <p>With ZeRO-1/2 each rank keeps masters (and AdamW state) only for the parameters it owns
 * ({@link #shard}); a checkpoint then gathers each master from its owner, one tensor at a time.
 */
public final class OffloadedMasters implements Precision {
  private final boolean pipelined;
  private PipelinedUpdate update; // pipelined: made with the optimizer
  private Map<String, Tensor> masters; // on the host
  private final Device device; // where the model computes
  private int layers;
  private Group group; // set when the masters are sharded over its ranks
  private Predicate<String> owns = n -> true;
  private Map<Tensor, Tensor> hostGrads; // CUDA: this step's gradients on the host, by master
  private Map<String, Tensor> gathered = Map.of(); // main rank: the masters gathered when
  private long steps, gatheredAt = -1; // the step count was gatheredAt (the same on every rank)

  /**
   * The model computes on {@code device}; {@code pipelined}: the update overlaps the next forward
   * ({@code offload_optimizer_pipeline}, default true; {@link PipelinedUpdate}).
   */
  public OffloadedMasters(boolean pipelined, Device device) {
    this.pipelined = pipelined;
    this.device = device;
  }

  @Override
  public boolean bf16() {
    return true;
  }

  /** The float32 model is built in host memory, where its values stay as the masters. */
  @Override
  public Device buildOn(Device device) {
    return Device.CPU;
  }

  /**
   * The masters are host copies of {@code fp32}'s weights (the weights themselves on a CPU run); on
   * CUDA they are pinned, and the device gets the bf16 weights one tensor at a time, so it never
   * holds a float32 copy of the model (7B: 25 GiB more at setup than in training).
   */
  @Override
  public LlamaModel adopt(LlamaModel fp32, PrintStream err) {
    layers = fp32.config().numHiddenLayers();
    LlamaModel m;
    if (device.isCuda()) {
      masters = new LinkedHashMap<>();
      Map<String, Tensor> bf16 = new LinkedHashMap<>();
      try (Scope s = Scope.open()) {
        fp32.weights()
            .forEach(
                (k, v) -> {
                  Tensor host = v.to(Device.CPU); // itself when built on the host (buildOn)
                  masters.put(k, host.pinMemory().retain());
                  bf16.put(k, host.to(device, DType.BF16, false).contiguous().retain());
                  v.release();
                });
      }
      m = LlamaModel.fromWeights(fp32.config().withDtype(DType.BF16), bf16);
    } else {
      m = fp32.withDtype(DType.BF16);
      masters = new LinkedHashMap<>(fp32.weights()); // host memory already
    }
    err.println(
        "offload_optimizer: cpu: the model computes in bf16 on "
            + device
            + "; fp32 master weights and AdamW state live in host memory"
            + (device.isCuda() ? " (pinned)" : "")
            + (pipelined ? "; the update overlaps the next forward" : ""));
    return m;
  }

  /**
   * With ZeRO-1/2: drops the masters of parameters another rank updates; {@link #saved} then
   * gathers them from their owners over {@code group}.
   */
  @Override
  public void shard(Predicate<String> owns, Group group) {
    if (!group.isDistributed()) return;
    boolean others = masters.keySet().stream().anyMatch(owns.negate());
    if (!group.any(others)) return; // every rank updates everything (DDP): nothing to gather
    this.owns = owns;
    this.group = group;
    masters
        .entrySet()
        .removeIf(
            e -> {
              if (owns.test(e.getKey())) return false;
              e.getValue().release();
              return true;
            });
  }

  @Override
  public Grad.Guard enter(Device device) {
    return () -> {};
  }

  @Override
  public Map<String, Tensor> optimizerParams(Map<String, Tensor> trainable) {
    return masters;
  }

  @Override
  public long groupCap() {
    return MasterWeights.GROUP_CAP;
  }

  /**
   * The bf16 model's gradient, on the host as float32. On CUDA the first call of a step copies
   * every gradient this rank updates to pinned host memory at once (bf16, 2 bytes a parameter) and
   * waits for them once, so that the update that follows never waits for the GPU: the copy-back of
   * one group (queued on the GPU's stream) then overlaps the CPU's update of the next, instead of a
   * gradient read of the next group waiting behind it on that stream.
   */
  @Override
  public Function<Tensor, Tensor> gradOf(LlamaModel model) {
    if (pipelined) return pipelinedUpdate(model)::gradOf;
    Map<Tensor, Tensor> modelParamOf = new IdentityHashMap<>();
    masters.forEach((k, v) -> modelParamOf.put(v, model.weights().get(k)));
    return master -> {
      if (!device.isCuda()) {
        Tensor g = modelParamOf.get(master).grad();
        return g == null ? null : g.toFloat();
      }
      if (hostGrads == null) hostGrads = fetchGrads(modelParamOf);
      Tensor h = hostGrads.get(master);
      return h == null ? null : h.toFloat();
    };
  }

  /** Every gradient of {@code modelParamOf}'s values, in pinned host memory, by master. */
  private static Map<Tensor, Tensor> fetchGrads(Map<Tensor, Tensor> modelParamOf) {
    Map<Tensor, Tensor> out = new IdentityHashMap<>();
    try (Scope s = Scope.open()) {
      modelParamOf.forEach(
          (master, param) -> {
            Tensor g = param.grad();
            if (g == null) return;
            Tensor h = Torch.emptyPinned(g.dtype(), g.shape()).retain();
            h.raw().copy_(g.raw(), true);
            out.put(master, h);
          });
    }
    Torch.synchronize(); // once per step: the copies above are all done
    return out;
  }

  /**
   * What the optimizer calls after each group's update: its masters go back into the bf16 model,
   * asynchronously from pinned memory on CUDA (the next forward is queued behind the copies on the
   * same stream, and the next step's gradient read synchronizes with it, so the masters are not
   * changed while a copy reads them).
   */
  @Override
  public Consumer<List<Tensor>> afterGroupStep(LlamaModel model) {
    if (pipelined) return pipelinedUpdate(model)::afterGroup;
    Map<Tensor, Tensor> modelParamOf = new IdentityHashMap<>();
    masters.forEach((k, v) -> modelParamOf.put(v, model.weights().get(k)));
    return updated -> {
      try (Scope s = Scope.open();
          Grad.Guard g = Grad.noGrad()) {
        for (Tensor master : updated) modelParamOf.get(master).raw().copy_(master.raw(), true);
      }
    };
  }

  private PipelinedUpdate pipelinedUpdate(LlamaModel model) {
    if (update == null)
      update =
          new PipelinedUpdate(
              masters, model, device.isCuda() ? new CudaLane(device.index()) : new HostLane());
    return update;
  }

  /**
   * Pipelined: AdamW's groups never span two units (the embedding, a block, the head), in forward
   * order, so that each unit's weights are done as soon as its own groups are. Per element the
   * kernel does what it does in any grouping, so the numbers do not change.
   */
  @Override
  public List<AdamW.Group> optimizerGroups(
      Map<String, Tensor> params, Predicate<String> owns, double weightDecay) {
    if (!pipelined) return Precision.super.optimizerGroups(params, owns, weightDecay);
    Map<Integer, Map<String, Tensor>> byUnit = new TreeMap<>();
    for (var e : params.entrySet())
      byUnit
          .computeIfAbsent(
              RecomputingBackward.stageOf(e.getKey(), layers), u -> new LinkedHashMap<>())
          .put(e.getKey(), e.getValue());
    List<AdamW.Group> groups = new ArrayList<>();
    byUnit.forEach(
        (unit, unitParams) -> {
          for (AdamW.Group g : AdamW.groups(unitParams, owns, groupCap(), weightDecay))
            groups.add(
                new AdamW.Group("unit" + unit + "." + g.name(), g.params(), g.weightDecay()));
        });
    return groups;
  }

  /** Pipelined: the trainer's optimizer queues the update and returns. */
  @Override
  public Optimizer optimizer(AdamW adamW, double maxGradNorm) {
    return update == null ? adamW : new PipelinedOptimizer(adamW, maxGradNorm, update);
  }

  /** Pipelined: before unit {@code stage}'s forward, its new weights (and nothing else). */
  @Override
  public IntConsumer gateUnits(IntConsumer stages) {
    return update == null ? stages : new UnitGate(update.pipeline(), stages);
  }

  @Override
  public void awaitAll() {
    if (update != null) update.drain();
  }

  /**
   * Counts the step (every rank calls it once per step); drops the last gathered masters. With
   * ZeRO-1/2 the owners send their new weights to every rank right after the step, so a pipelined
   * update is waited for here (no overlap then).
   */
  @Override
  public void afterStep(LlamaModel model) {
    steps++;
    if (group != null) awaitAll();
    if (hostGrads != null) hostGrads.values().forEach(Tensor::release);
    hostGrads = null;
    releaseGathered();
  }

  /**
   * The fp32 masters as a model, for a checkpoint: with sharded masters every rank takes part in
   * gathering each from its owner (an all-reduce where the others add -0.0, which leaves every
   * float32 value, signed zeros included, as it is); only the main rank, which writes the model,
   * keeps the result. Asked again before the next step (the export after the final checkpoint,
   * which only the main rank makes) it returns what it gathered, with no collective.
   */
  @Override
  public LlamaModel saved(LlamaModel model) {
    awaitAll();
    LlamaConfig fp32 = model.config().withDtype(DType.F32);
    if (group == null) return LlamaModel.fromWeights(fp32, masters);
    if (gatheredAt == steps)
      return group.dist().isMain() ? LlamaModel.fromWeights(fp32, gathered) : model;
    Map<String, Tensor> all = OwnedMasters.fromOwners(group, owns, masters, model);
    boolean main = group.dist().isMain();
    gatheredAt = steps;
    if (!main) return model; // not written by this rank
    gathered = all;
    return LlamaModel.fromWeights(fp32, all);
  }

  private void releaseGathered() {
    gathered.values().forEach(Tensor::release);
    gathered = Map.of();
  }

  @Override
  public LlamaModel exported(LlamaModel model) {
    awaitAll();
    return Precision.bf16Model(model);
  }
}
