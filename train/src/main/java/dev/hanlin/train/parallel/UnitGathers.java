package dev.hanlin.train.parallel;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Group;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The gathering and freeing of sharded units shared by {@link Zero3} (full training) and {@link
 * Zero3Lora} (a LoRA run's frozen base), so both get the same prefetch: a unit's weights are
 * all-gathered from every rank's shard before its stage runs and dropped after, and, as the walk
 * enters a stage, the all-gather of the stage it enters next is started ({@link Zero3Prefetch}, off
 * with {@code HANLIN_ZERO3_PREFETCH=0}). On NCCL the prefetched gather runs on the communication
 * stream beside the compute, which waits for it only where the weights are first used; on Gloo the
 * worker threads gather while the caller computes. At most two stages are gathered at once.
 *
 * @param <S> the owner's slot (the unit's state on this rank)
 */
final class UnitGathers<S extends UnitGathers.Slot> {
  private final Group group;
  private final int world, layers;
  private final boolean backToEmbedding;
  private final boolean prefetch = Zero3Prefetch.enabled();
  private final List<S> slots = new ArrayList<>();
  private final Map<Integer, List<S>> byStage = new HashMap<>();

  /** One unit on this rank: the model's tensors it points at, and this rank's shard of it. */
  static class Slot {
    final Zero3Layout.Unit unit;
    final List<Tensor> params = new ArrayList<>(); // the model's, in the unit's order
    final Tensor shard; // this rank's (S), retained
    final DType gathered; // the dtype the full weights are gathered in (the shard is cast)
    boolean live; // the model's tensors point at the gathered weights
    Group.Gathering inFlight; // a gather started, not yet awaited

    Slot(Zero3Layout.Unit unit, Tensor shard, DType gathered) {
      this.unit = unit;
      this.shard = shard;
      this.gathered = gathered;
    }
  }

  /**
   * Units of a model of {@code layers} blocks; {@code backToEmbedding}: whether the walk enters the
   * embedding's stage again for its backward (a trained embedding), so that it is worth gathering
   * ahead.
   */
  UnitGathers(Group group, int layers, boolean backToEmbedding) {
    this.group = group;
    this.world = group.dist().worldSize();
    this.layers = layers;
    this.backToEmbedding = backToEmbedding;
  }

  /** Adds {@code s}, gathered with its stage. */
  void add(S s) {
    slots.add(s);
    byStage.computeIfAbsent(s.unit.stage(), k -> new ArrayList<>()).add(s);
  }

  /** A tied head multiplies by the embedding: its stage gathers that unit too. */
  void tieHead() {
    if (byStage.containsKey(-1))
      byStage.computeIfAbsent(layers, k -> new ArrayList<>()).addAll(byStage.get(-1));
  }

  List<S> slots() {
    return slots;
  }

  /** The units of {@code stage} (with a tied head, the head's includes the embedding's). */
  List<S> stage(int stage) {
    return byStage.getOrDefault(stage, List.of());
  }

  /** A schedule for one walk, or null with prefetch off. */
  Zero3Prefetch schedule() {
    return prefetch ? new Zero3Prefetch(layers, backToEmbedding) : null;
  }

  /** Gathers {@code stage}'s units, then starts those of the stage {@code ahead} names next. */
  void enter(int stage, Zero3Prefetch ahead) {
    for (S s : stage(stage)) gather(s);
    if (ahead != null) startGathers(ahead.next(stage));
  }

  /** Frees {@code stage}'s units. */
  void leave(int stage) {
    try (Grad.Guard g = Grad.noGrad()) {
      for (S s : stage(stage)) free(s);
    }
  }

  /** Every unit gathered, for the whole use, freed when the guard closes. */
  Grad.Guard whole() {
    for (S s : slots) gather(s);
    return () -> {
      try (Grad.Guard g = Grad.noGrad()) {
        for (S s : slots) free(s);
      }
    };
  }

  /**
   * Points the unit's weights at its full values, gathered from every rank: waits for its prefetch,
   * or gathers it now.
   */
  void gather(S s) {
    if (s.live) return;
    startGather(s);
    Group.Gathering in = s.inFlight;
    s.inFlight = null;
    Tensor full = in.await(); // on NCCL: the compute stream waits, the host goes on
    try (Scope scope = Scope.open();
        Grad.Guard g = Grad.noGrad()) {
      List<Zero3Layout.Entry> es = s.unit.tensors();
      for (int i = 0; i < es.size(); i++) { // views: nothing is copied
        var e = es.get(i);
        s.params.get(i).set_(full.narrow(0, e.offset(), e.numel()).view(e.shape()));
      }
    } finally {
      full.release(); // the views hold its storage now
    }
    s.live = true;
  }

  /** Starts the all-gathers of {@code stage}'s units (none for {@link Zero3Prefetch#NONE}). */
  private void startGathers(int stage) {
    for (S s : stage(stage)) startGather(s);
  }

  /**
   * Starts the unit's all-gather into a buffer of its own, unless it is gathered or on its way: the
   * cast of this rank's shard is queued first, so the collective sees the current values.
   */
  private void startGather(S s) {
    if (s.live || s.inFlight != null) return;
    try (Scope scope = Scope.open();
        Grad.Guard g = Grad.noGrad()) {
      Tensor full = Torch.empty(s.gathered, s.shard.device(), s.unit.shard() * world);
      s.inFlight = group.allGatherAsync(full, s.shard.detach().to(s.gathered));
    }
  }

  /** The units gathered or being gathered, by name (at most two stages' at a time). */
  List<String> liveUnits() {
    return slots.stream()
        .filter(s -> s.live || s.inFlight != null)
        .map(s -> s.unit.name())
        .toList();
  }

  /**
   * Drops the unit's gathered weights (their memory goes with the last reference); a prefetch not
   * used (a walk cut short) is waited for first, as every rank took part in it.
   */
  void free(S s) {
    if (s.inFlight != null) {
      Group.Gathering in = s.inFlight;
      s.inFlight = null;
      in.await().release();
    }
    for (Tensor p : s.params) p.setEmpty_();
    s.live = false;
  }
}
