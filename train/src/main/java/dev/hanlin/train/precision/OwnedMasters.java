package dev.hanlin.train.precision;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Group;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

/**
 * fp32 master weights kept only by the rank that updates them (ZeRO-1/2's whole-tensor owners), and
 * how a checkpoint gathers them back: the approach of {@link OffloadedMasters}, for any precision
 * that keeps per-parameter masters ({@link MasterWeights}). Between checkpoints nothing is
 * gathered: the owners' updated bf16 weights reach every rank through the parallelism's broadcast.
 */
final class OwnedMasters {
  private final Group group;
  private final Predicate<String> owns;
  private Map<String, Tensor> gathered = Map.of(); // main rank: the masters gathered when
  private long gatheredAt = -1; // the step count was this (the same on every rank)

  private OwnedMasters(Group group, Predicate<String> owns) {
    this.group = group;
    this.owns = owns;
  }

  /**
   * When some rank of {@code group} updates only a share of {@code masters} ({@code owns}): the
   * masters this rank keeps (the others released) and the gatherer; null when every rank updates
   * everything (one process, DDP), and then {@code masters} is left as it is. Every rank must call
   * it.
   */
  static Kept keep(Map<String, Tensor> masters, Predicate<String> owns, Group group) {
    if (!group.isDistributed()) return null;
    boolean others = masters.keySet().stream().anyMatch(owns.negate());
    if (!group.any(others)) return null; // nothing to gather
    Map<String, Tensor> mine = new LinkedHashMap<>();
    masters.forEach(
        (k, v) -> {
          if (owns.test(k)) mine.put(k, v);
          else v.release();
        });
    return new Kept(mine, new OwnedMasters(group, owns));
  }

  /** What {@link #keep} leaves: this rank's masters, and how to gather all of them. */
  record Kept(Map<String, Tensor> masters, OwnedMasters gatherer) {}

  /**
   * Every master, in {@code model}'s order, for a checkpoint: every rank takes part in gathering
   * each from its owner (an all-reduce where the others add -0.0, which leaves every float32 value,
   * signed zeros included, as it is); only the main rank keeps the result, on the host, and gets
   * it; the others get null. Asked again at the same {@code step} (the export after the final
   * checkpoint, which only the main rank makes), it returns what it gathered, with no collective.
   */
  Map<String, Tensor> gather(Map<String, Tensor> masters, LlamaModel model, long step) {
    boolean main = group.dist().isMain();
    if (gatheredAt == step) return main ? gathered : null;
    release();
    Map<String, Tensor> all = fromOwners(group, owns, masters, model);
    gatheredAt = step;
    gathered = all;
    return main ? all : null;
  }

  /**
   * Every one of {@code model}'s masters, each from the rank that {@code owns} it (an all-reduce
   * where the others add -0.0), on the host of the main rank; an empty map on the others. Every
   * rank must call it. Shared with {@link OffloadedMasters}.
   */
  static Map<String, Tensor> fromOwners(
      Group group, Predicate<String> owns, Map<String, Tensor> masters, LlamaModel model) {
    boolean main = group.dist().isMain();
    Map<String, Tensor> all = new LinkedHashMap<>();
    for (var e : model.weights().entrySet()) {
      try (Scope s = Scope.open()) {
        String n = e.getKey();
        Tensor t =
            owns.test(n)
                ? masters.get(n).to(group.device(), DType.F32, false).copy()
                : Torch.full(-0.0, DType.F32, group.device(), e.getValue().shape());
        group.allReduceSum(t);
        if (main) all.put(n, t.to(Device.CPU).retain());
      }
    }
    return all;
  }

  /** Drops the last gathered masters. */
  void release() {
    gathered.values().forEach(Tensor::release);
    gathered = Map.of();
    gatheredAt = -1;
  }
}
