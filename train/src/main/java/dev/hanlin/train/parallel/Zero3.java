package dev.hanlin.train.parallel;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Cuda;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.torch.optim.FusedAdamW;
import dev.hanlin.torch.safetensors.SafetensorsWriter;
import dev.hanlin.train.Checkpoints;
import dev.hanlin.train.RecomputingBackward;
import dev.hanlin.train.optim.AdamW;
import dev.hanlin.train.optim.Optimizer;
import dev.hanlin.train.precision.Precision;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * ZeRO stage 3 (FSDP's full sharding): every rank keeps only its shard of each unit of {@link
 * Zero3Layout} (float32, the values AdamW updates), that shard's gradient and its AdamW moments;
 * the model's weight tensors hold no memory between uses. As the recomputing backward walks the
 * model, a unit's compute-dtype weights are all-gathered just before its forward and again before
 * its recompute and backward, and dropped after; as its backward ends, its gradients are
 * reduce-scattered onto the shards, every micro-batch, accumulating in float32 (so gradient memory
 * stays a shard's whatever the accumulation). The update is that of one process over the same
 * global batch. As the walk enters a stage, the all-gather of the stage it enters next is started
 * ({@link Zero3Prefetch}): on NCCL it runs on the communication stream beside the compute, which
 * waits for it (an event, no host sync) only where the weights are first used; on Gloo the worker
 * threads gather while the caller computes ({@link UnitGathers}, shared with {@link Zero3Lora}).
 * The reduce-scatters are synchronous.
 */
final class Zero3 implements Parallelism {
  private final Group group;
  private final Zero3Layout layout;
  private final UnitGathers<Slot> units;
  private final List<Slot> slots;
  private final DType compute;
  private final Device device;
  private final LlamaModel model;
  private final int rank, world;

  /**
   * One unit on this rank: the model's tensors, the float32 shard (gathered in the compute dtype)
   * and its gradient.
   */
  private static final class Slot extends UnitGathers.Slot {
    final Tensor grad; // float32 (S), retained; shard's grad is grad

    Slot(Zero3Layout.Unit unit, Tensor shard, Tensor grad, DType compute) {
      super(unit, shard, compute);
      this.grad = grad;
    }
  }

  /**
   * Shards {@code model}'s weights: each rank takes its slice of rank 0's float32 values {@code
   * fp32} (the weights themselves, or master copies), then the model's tensors and {@code fp32} are
   * emptied.
   */
  Zero3(Group group, LlamaModel model, Map<String, Tensor> fp32, PrintStream err) {
    this(group, model, UnitWeights.of(fp32), err);
  }

  /**
   * Shards {@code model}'s weights, whose values {@code fp32} gives one unit at a time: each rank
   * takes its slice of rank 0's values of each unit, and empties them before asking for the next,
   * so that setting up holds one whole unit at most (besides what {@code model} holds).
   */
  Zero3(Group group, LlamaModel model, UnitWeights fp32, PrintStream err) {
    this.group = group;
    this.model = model;
    this.rank = group.dist().rank();
    this.world = group.dist().worldSize();
    this.compute = model.dtype();
    this.device = model.device();
    int layers = model.config().numHiddenLayers();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    model.weights().forEach((k, v) -> shapes.put(k, v.shape()));
    this.layout = Zero3Layout.of(shapes, layers, world);
    this.units = new UnitGathers<>(group, layers, true); // every weight is trained
    this.slots = units.slots();
    for (Zero3Layout.Unit u : layout.units()) {
      Tensor shard, grad;
      try (Scope s = Scope.open()) {
        shard = shardOf(u, fp32.unit(u.tensors().stream().map(Zero3Layout.Entry::name).toList()));
        grad = Torch.zeros(DType.F32, device, u.shard()).retain();
      }
      shard.raw().mutable_grad().put(grad.raw());
      Slot slot = new Slot(u, shard, grad, compute);
      for (var e : u.tensors()) slot.params.add(model.weights().get(e.name()));
      units.add(slot);
    }
    // a tied head multiplies by the embedding: its stage gathers (and reduces) that unit too
    if (model.config().tieWordEmbeddings()) units.tieHead();
    try (Grad.Guard g = Grad.noGrad()) {
      for (Slot s : slots) units.free(s);
    }
    long kept = slots.stream().mapToLong(s -> s.unit.shard()).sum();
    String setup = "";
    if (device.isCuda()) { // the peak printed at the end is training's, not this setup's
      setup =
          String.format(
              "; setting up held %.2f GiB at most", Cuda.peakAllocatedBytes(device.index()) / GIB);
      Cuda.resetPeak(device.index());
    }
    if (group.dist().isMain())
      err.printf(
          "zero_stage 3: %d units sharded over %d ranks; each keeps %.2f GiB of fp32 weights, as"
              + " much again of gradients and twice that of AdamW state%s%n",
          slots.size(), world, kept * 4 / GIB, setup);
  }

  private static final double GIB = 1024.0 * 1024 * 1024;

  /**
   * This rank's float32 slice of unit {@code u}, retained, from its values {@code fp32} (on any
   * device): the unit flattened on this device (the one whole unit setting up holds there), rank
   * 0's copy broadcast so that every rank starts from the same weights; {@code fp32} is emptied.
   */
  private Tensor shardOf(Zero3Layout.Unit u, Map<String, Tensor> fp32) {
    List<Tensor> parts = new ArrayList<>();
    for (var e : u.tensors())
      parts.add(fp32.get(e.name()).detach().to(device, DType.F32, false).reshape(-1));
    long pad = u.shard() * world - u.numel();
    if (pad > 0) parts.add(Torch.zeros(DType.F32, device, pad));
    Tensor flat = Torch.cat(parts, 0);
    parts.clear();
    try (Grad.Guard g = Grad.noGrad()) {
      fp32.values().forEach(Tensor::setEmpty_);
    }
    group.broadcast(List.of(flat), 0);
    return flat.narrow(0, rank * u.shard(), u.shard()).copy().retain();
  }

  @Override
  public Group group() {
    return group;
  }

  @Override
  public void start(Map<String, Tensor> trainable) {} // sharded when built

  /**
   * AdamW over the shards: each shard splits into the part of its unit's matrices (weight decay)
   * and the rest, so that every element decays as in an unsharded run.
   */
  @Override
  public AdamW optimizer(
      Precision precision,
      LlamaModel model,
      Map<String, Tensor> trainable,
      double weightDecay,
      FusedAdamW.Betas betas,
      double maxGradNorm) {
    Map<String, Tensor> decay = new LinkedHashMap<>(), rest = new LinkedHashMap<>();
    Map<Tensor, Tensor> gradOf = new IdentityHashMap<>();
    List<Tensor> shards = new ArrayList<>();
    for (Slot s : slots) {
      long d = decayed(s);
      long n = s.unit.shard();
      if (d > 0) view(s, 0, d, s.unit.name() + ".decay", decay, gradOf);
      if (n - d > 0) view(s, d, n - d, s.unit.name() + ".no_decay", rest, gradOf);
      shards.add(s.shard);
    }
    List<AdamW.Group> groups = new ArrayList<>();
    if (!decay.isEmpty()) groups.add(new AdamW.Group("decay", decay, weightDecay));
    if (!rest.isEmpty()) groups.add(new AdamW.Group("no_decay", rest, 0.0));
    return new AdamW(groups, betas, maxGradNorm, gradOf::get, shards);
  }

  /** How many of this rank's shard elements of {@code s} are matrix elements. */
  private long decayed(Slot s) {
    long from = rank * s.unit.shard();
    return Math.clamp(s.unit.decay() - from, 0, s.unit.shard());
  }

  private static void view(
      Slot s, long from, long n, String name, Map<String, Tensor> into, Map<Tensor, Tensor> grads) {
    Tensor v = s.shard.narrow(0, from, n).retain();
    into.put(name, v);
    grads.put(v, s.grad.narrow(0, from, n).retain());
  }

  /** The gathering, freeing and gradient reduce-scatter around each stage of the backward. */
  @Override
  public IntConsumer afterBackwardStage(Map<String, Tensor> trainable, boolean last) {
    Zero3Prefetch ahead = units.schedule();
    return new RecomputingBackward.Walk() {
      @Override
      public void enter(int stage) {
        units.enter(stage, ahead);
      }

      @Override
      public void leave(int stage) {
        units.leave(stage);
      }

      @Override
      public void accept(int stage) {
        for (Slot s : units.stage(stage)) reduceScatter(s);
        leave(stage);
        if (stage == -1 && last && world > 1) { // the average over the ranks, as DDP's
          var n = new org.bytedeco.pytorch.Scalar(world); // one for every unit, freed by the step
          for (Slot s : slots) s.grad.raw().div_(n);
        }
      }
    };
  }

  /** Each unit's float32 shard gradient on this rank, by unit name (for tests). */
  Map<String, Tensor> shardGrads() {
    Map<String, Tensor> out = new LinkedHashMap<>();
    for (Slot s : slots) out.put(s.unit.name(), s.grad);
    return out;
  }

  /** The units gathered or being gathered, by name (at most two stages' at a time). */
  List<String> liveUnits() {
    return units.liveUnits();
  }

  /** The unit's gradients summed over the ranks into each rank's shard gradient. */
  private void reduceScatter(Slot s) {
    try (Scope scope = Scope.open()) {
      List<Tensor> parts = new ArrayList<>();
      for (int i = 0; i < s.params.size(); i++) {
        Tensor g = s.params.get(i).grad();
        long n = s.unit.tensors().get(i).numel();
        parts.add(g == null ? Torch.zeros(DType.F32, device, n) : g.reshape(-1).toFloat());
      }
      long pad = s.unit.shard() * world - s.unit.numel();
      if (pad > 0) parts.add(Torch.zeros(DType.F32, device, pad));
      Tensor mine = Torch.empty(DType.F32, device, s.unit.shard());
      group.reduceScatterSum(mine, Torch.cat(parts, 0));
      s.grad.raw().add_(mine.raw());
    }
    for (Tensor p : s.params) p.clearGrad();
  }

  /** Each rank has its shards' gradients only. */
  @Override
  public Tensor globalNorm(Tensor localNorm) {
    return group.isDistributed() ? Shards.globalNorm(group, localNorm) : localNorm;
  }

  @Override
  public Grad.Guard wholeModel() {
    return units.whole();
  }

  @Override
  public boolean shardedOptimizerState() {
    return true;
  }

  // ---- checkpoints and export ----

  /**
   * Each rank's shards ({@code model-rank-R-of-W.safetensors}, float32, one tensor per unit) and
   * optimizer state ({@code optimizer-rank-R-of-W.safetensors}: {@code exp_avg.<unit>}, {@code
   * exp_avg_sq.<unit>}, {@code step.<unit>}); the main rank adds the layout and the model's {@code
   * config.json}. Nothing is gathered.
   */
  @Override
  public Map<String, Checkpoints.Part> checkpointParts(
      LlamaModel model, Precision precision, Optimizer optimizer) {
    Map<String, Checkpoints.Part> parts = new LinkedHashMap<>();
    parts.put(
        "model",
        Checkpoints.Part.perRank(
            (dir, d) -> {
              Map<String, Tensor> shards = new LinkedHashMap<>();
              for (Slot s : slots) shards.put(s.unit.name(), s.shard);
              SafetensorsWriter.write(dir.resolve(Zero3Layout.modelFile(rank, world)), shards);
            }));
    parts.put(
        "layout",
        (dir, d) -> {
          layout.write(dir.resolve(Zero3Layout.FILE));
          dev.hanlin.torch.io.AtomicFiles.writeSynced(
              dir.resolve("config.json"), model.config().withDtype(DType.F32).toJsonString());
        });
    parts.put(
        "optimizer",
        Checkpoints.Part.perRank(
            (dir, d) -> {
              try (Scope scope = Scope.open()) {
                SafetensorsWriter.write(
                    dir.resolve(Checkpoints.optimizerShard(rank, world)), flatState(optimizer));
              }
            }));
    return parts;
  }

  /** The optimizer state by unit: each kind's decay and no-decay parts joined into one shard. */
  private Map<String, Tensor> flatState(Optimizer optimizer) {
    Map<String, Tensor> state = optimizer.state(), out = new LinkedHashMap<>();
    for (Slot s : slots) {
      String u = s.unit.name();
      for (String kind : List.of("exp_avg.", "exp_avg_sq.")) {
        List<Tensor> parts = new ArrayList<>();
        for (String part : List.of(".decay", ".no_decay"))
          if (state.containsKey(kind + u + part)) parts.add(state.get(kind + u + part));
        out.put(kind + u, Torch.cat(parts, 0));
      }
      Tensor step = state.get("step." + u + ".decay");
      out.put("step." + u, step != null ? step : state.get("step." + u + ".no_decay"));
    }
    return out;
  }

  /**
   * This rank's slice of each unit's optimizer state, from a checkpoint of any world size and zero
   * stage: the unit's tensors read whole (one unit at a time, on the host), flattened as the layout
   * orders them, sliced.
   */
  @Override
  public void restoreOptimizer(Checkpoints.Loaded ck, Optimizer optimizer) throws IOException {
    Map<String, Tensor> state = optimizer.state();
    for (Slot s : slots) {
      String u = s.unit.name();
      List<String> keys = new ArrayList<>();
      for (var e : s.unit.tensors()) {
        keys.add("exp_avg." + e.name());
        keys.add("exp_avg_sq." + e.name());
      }
      String first = s.unit.tensors().getFirst().name();
      keys.add("step." + first);
      Map<String, Tensor> saved = ck.optimizer(keys);
      try (Scope scope = Scope.open()) {
        for (String kind : List.of("exp_avg.", "exp_avg_sq.")) {
          List<Tensor> parts = new ArrayList<>();
          for (var e : s.unit.tensors()) parts.add(saved.get(kind + e.name()).reshape(-1));
          long pad = s.unit.shard() * world - s.unit.numel();
          if (pad > 0) parts.add(Torch.zeros(DType.F32, Device.CPU, pad));
          Tensor mine = Torch.cat(parts, 0).narrow(0, rank * s.unit.shard(), s.unit.shard());
          long d = decayed(s);
          if (d > 0) state.get(kind + u + ".decay").copy_(mine.narrow(0, 0, d));
          if (s.unit.shard() - d > 0)
            state.get(kind + u + ".no_decay").copy_(mine.narrow(0, d, s.unit.shard() - d));
        }
        for (String part : List.of(".decay", ".no_decay"))
          if (state.containsKey("step." + u + part))
            state.get("step." + u + part).copy_(saved.get("step." + first));
      } finally {
        saved.values().forEach(Tensor::release);
      }
    }
  }

  /**
   * The final HF folder, gathered one unit at a time in float32: the main rank casts each weight to
   * the precision's export dtype and writes it at once (the files {@link HfCheckpoint#save} writes,
   * byte for byte), so no rank, device or host, ever holds more than one unit.
   */
  @Override
  public void export(LlamaModel model, Precision precision, ModelWriter write) throws IOException {
    boolean bad = false;
    try (Scope scope = Scope.open()) {
      for (Slot s : slots) bad |= s.shard.isFinite().logicalNot().sum().item() > 0;
    }
    if (group.any(bad))
      throw new IllegalStateException(
          "the trained model has non-finite values (NaN or infinity); it was not exported to "
              + write.folder());
    DType dtype = precision.bf16() ? DType.BF16 : DType.F32;
    boolean main = group.dist().isMain();
    Map<String, long[]> order = LlamaModel.expectedShapes(model.config());
    try (HfCheckpoint.Streamed files =
        main
            ? HfCheckpoint.stream(model.config(), dtype, write.folder(), write.maxShardBytes())
            : null) {
      for (Slot s : slots) {
        try (Scope scope = Scope.open()) {
          Tensor full = Torch.empty(DType.F32, device, s.unit.shard() * world);
          group.allGather(full, s.shard.detach());
          if (!main) continue;
          Map<String, Tensor> unit = new LinkedHashMap<>();
          for (var e : s.unit.tensors())
            unit.put(e.name(), full.narrow(0, e.offset(), e.numel()).view(e.shape()));
          for (String name : order.keySet()) // HF's order, in which the files are filled
          if (unit.containsKey(name)) files.put(name, unit.get(name).to(dtype));
        }
      }
      if (main) {
        files.finish();
        write.finish();
      }
    }
  }
}
