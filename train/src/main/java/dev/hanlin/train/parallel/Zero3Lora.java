package dev.hanlin.train.parallel;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.RecomputingBackward;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntConsumer;

/**
 * ZeRO stage 3 for a LoRA run: the frozen base is sharded as {@link Zero3} shards full training
 * (one flat unit per stage of the recomputing backward, {@link Zero3Layout}), but in the base's own
 * dtype and with nothing else: no gradient, no optimizer state, no reduce-scatter. A unit's full
 * weights are all-gathered before its forward and again before its recompute and backward, and
 * dropped after, the next stage's gather started one stage ahead ({@link UnitGathers}, as {@link
 * Zero3}'s). The adapters (and the modules to save, e.g. the grown embed_tokens and lm_head of the
 * Llama2-Chinese path) are small and stay replicated on every rank: as a stage's backward ends on
 * the step's last micro-batch, their gradients are summed over the ranks in buckets while the next
 * stages run, and divided by the world size ({@link GradBuckets}, as DDP under the explicit
 * backward; earlier micro-batches only accumulate, as DDP's {@code no_sync}). Every rank then takes
 * the same AdamW step of a one-process LoRA run, so the optimizer, checkpoints (the adapter and the
 * whole optimizer state, written by the main rank) and the PEFT export are those of a one-process
 * run: a checkpoint resumes under any world size and stage.
 */
final class Zero3Lora implements Parallelism {
  private final Group group;
  private final int rank, world;
  private final UnitGathers<UnitGathers.Slot> units; // the base's, in its own dtype
  private final int layers;
  private Map<Integer, Map<String, Tensor>> trainableByStage; // set by start
  private GradBuckets buckets; // the adapters' average over the ranks; set by start

  /**
   * Shards the frozen base of {@code model} (a LoRA model with a dense base): each rank takes its
   * slice of rank 0's weights, then the model's base tensors are emptied; says on {@code err} what
   * each rank keeps.
   */
  Zero3Lora(Group group, LlamaModel model, PrintStream err) {
    if (model.lora() == null) throw new IllegalArgumentException("not a LoRA model");
    if (!model.quantizedWeights().isEmpty())
      throw new IllegalArgumentException(
          "zero_stage 3 does not shard a quantized base (lora.load_in_bits)");
    this.group = group;
    this.rank = group.dist().rank();
    this.world = group.dist().worldSize();
    this.layers = model.config().numHiddenLayers();
    Set<String> trainable = model.lora().weights().keySet();
    Map<String, Tensor> frozen = new LinkedHashMap<>();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    model
        .weights()
        .forEach(
            (k, v) -> {
              if (trainable.contains(k)) return; // a module to save: trained, replicated
              frozen.put(k, v);
              shapes.put(k, v.shape());
            });
    Zero3Layout layout = Zero3Layout.of(shapes, layers, world);
    // the base's embedding is frozen: the recomputing backward does not enter it again (and a
    // trained embed_tokens is a module to save, not in the base), so it is not gathered ahead
    this.units = new UnitGathers<>(group, layers, false);
    group.broadcast(frozen.values(), 0); // every rank starts from rank 0's base
    long kept = 0;
    for (Zero3Layout.Unit u : layout.units()) {
      Tensor shard;
      try (Scope s = Scope.open()) {
        List<Tensor> parts = new ArrayList<>();
        for (var e : u.tensors()) parts.add(frozen.get(e.name()).detach().reshape(-1));
        DType dtype = parts.getFirst().dtype();
        long pad = u.shard() * world - u.numel();
        if (pad > 0) parts.add(Torch.zeros(dtype, parts.getFirst().device(), pad));
        shard = Torch.cat(parts, 0).narrow(0, rank * u.shard(), u.shard()).copy().retain();
      }
      kept += shard.byteSize();
      var slot = new UnitGathers.Slot(u, shard, shard.dtype()); // gathered as it is kept
      for (var e : u.tensors()) slot.params.add(frozen.get(e.name()));
      units.add(slot);
    }
    // a tied head multiplies by the embedding: its stage gathers that unit too
    if (model.config().tieWordEmbeddings()) units.tieHead();
    try (Grad.Guard g = Grad.noGrad()) {
      for (var s : units.slots()) units.free(s);
    }
    long adapters = model.lora().weights().values().stream().mapToLong(Tensor::numel).sum();
    if (group.dist().isMain())
      err.printf(
          "zero_stage 3 with LoRA: the frozen base's %d units sharded over %d ranks, %.3f GiB of"
              + " them on each; the %,d trainable parameters (adapters%s) on every rank, their"
              + " gradients averaged as DDP does%n",
          units.slots().size(),
          world,
          kept / GIB,
          adapters,
          model.lora().config().modulesToSave().isEmpty() ? "" : " and modules to save");
  }

  private static final double GIB = 1024.0 * 1024 * 1024;

  @Override
  public Group group() {
    return group;
  }

  /** Every rank starts from rank 0's adapters. */
  @Override
  public void start(Map<String, Tensor> trainable) {
    group.broadcast(trainable.values(), 0);
    trainableByStage = GradBuckets.byStage(trainable, n -> RecomputingBackward.stageOf(n, layers));
    buckets = new GradBuckets(group, n -> GradBuckets.EVERY_RANK, Ddp.BUCKET_BYTES / 4);
  }

  /**
   * The gathering and freeing around each stage of the backward, and the average of the stage's
   * adapter gradients as its backward ends on the step's {@code last} micro-batch.
   */
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
        leave(stage);
        if (last && world > 1)
          buckets.stageDone(trainableByStage.getOrDefault(stage, Map.of()), stage == -1, true);
      }
    };
  }

  /** Each unit of the base gathered for the whole use, dropped when closed. */
  @Override
  public Grad.Guard wholeModel() {
    return units.whole();
  }

  /** The units gathered or being gathered, by name (for tests). */
  List<String> liveUnits() {
    return units.liveUnits();
  }
}
