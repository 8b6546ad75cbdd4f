package dev.hanlin.train.parallel;

import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Dist;
import dev.hanlin.torch.dist.Group;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The ZeRO owner policy: each parameter is owned by one rank, which alone keeps its AdamW moments
 * and updates it; the new values then go from each owner to every rank. With stage 1 the gradients
 * are still averaged in full on every rank (by {@link Ddp}); with stage 2 {@link #reduceGrads} sums
 * each onto its owner only, and the other ranks free theirs, so that gradient memory shrinks by the
 * world size too. The update stays exactly that of one process. Whole tensors are dealt, largest
 * first, to the rank holding the fewest bytes so far.
 */
final class Shards {
  private final Map<String, Integer> owner;
  private final int rank, world;

  private Shards(Map<String, Integer> owner, int rank, int world) {
    this.owner = owner;
    this.rank = rank;
    this.world = world;
  }

  /**
   * Deals {@code params} (name to tensor, the same on every rank) over the ranks of {@code dist}.
   */
  static Shards of(Map<String, Tensor> params, Dist dist) {
    List<String> names = new ArrayList<>(params.keySet());
    names.sort(Comparator.comparingLong((String n) -> -params.get(n).numel())); // stable
    long[] load = new long[dist.worldSize()];
    Map<String, Integer> owner = new LinkedHashMap<>();
    for (String n : names) {
      int r = 0;
      for (int i = 1; i < load.length; i++) if (load[i] < load[r]) r = i;
      owner.put(n, r);
      load[r] += params.get(n).numel();
    }
    return new Shards(owner, dist.rank(), dist.worldSize());
  }

  public boolean owns(String name) {
    return ownerOf(name) == rank;
  }

  public int ownerOf(String name) {
    Integer r = owner.get(name);
    if (r == null) throw new IllegalArgumentException("no parameter named " + name);
    return r;
  }

  /** After each rank updated the parameters it owns: every rank gets every new value. */
  public void syncParams(Group group, Map<String, Tensor> params) {
    params.forEach((n, p) -> group.broadcast(List.of(p), ownerOf(n)));
  }

  /**
   * ZeRO-2: the L2 norm of the gradients of all ranks, from {@code localNorm}, this rank's norm of
   * the gradients it keeps (0-dim); the same 0-dim float32 tensor on every rank, on the group's
   * device, never read on the host. Every rank must call it.
   */
  public static Tensor globalNorm(Group group, Tensor localNorm) {
    Tensor squared = localNorm.toFloat().to(group.device()).pow(2);
    group.allReduceSum(squared);
    return squared.pow(0.5);
  }

  /**
   * ZeRO-2: sums each gradient of {@code params} (name to parameter) over the ranks onto the rank
   * that owns it, and drops it on the others, so that a rank keeps gradient memory only for what it
   * updates. Call it, on every rank with the same names in the same order, as soon as backward has
   * finished these gradients (one transformer block at a time), once per micro-batch: an owner's
   * gradient accumulates the sums of every micro-batch. {@code average}, for the step's last
   * micro-batch: the owner then divides by the world size, which makes the average over the ranks
   * that data parallelism wants (DDP's).
   */
  public void reduceGrads(Group group, Map<String, Tensor> params, boolean average) {
    for (var e : params.entrySet()) {
      try (Scope s = Scope.open()) {
        Tensor p = e.getValue();
        boolean mine = owns(e.getKey());
        Tensor g = p.grad();
        if (g == null) { // unused in this micro-batch: it still takes part, with zeros
          g = Torch.zeros(p.dtype(), p.device(), p.shape());
          if (mine) p.raw().mutable_grad().put(g.raw());
        }
        group.reduceSum(g, ownerOf(e.getKey()));
        if (!mine) p.clearGrad();
        else if (average) g.raw().div_(new org.bytedeco.pytorch.Scalar(world));
      }
    }
  }
}
