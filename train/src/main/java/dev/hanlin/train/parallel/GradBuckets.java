package dev.hanlin.train.parallel;

import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Group;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * ZeRO-2's gradient reduce with DeepSpeed's {@code overlap_comm}: as backward finishes a stage's
 * gradients they join a bucket per owner rank (and dtype); a bucket of at least {@code cap}
 * elements is flattened into one buffer and reduced onto its owner asynchronously, so the transfer
 * runs while backward recomputes and differentiates the next block. A bucket is completed at the
 * end of the next stage (one stage of overlap, which also bounds the buffers alive at once): the
 * owner copies the sums back into its gradients, the other ranks freed theirs when the bucket was
 * flattened. At the end of backward ({@code -1}) every partial bucket is sent and all are
 * completed, before the optimizer step.
 *
 * <p>The sums are those of {@link Shards#reduceGrads}, element by element: with two ranks each is
 * {@code a + b} however the buffer is cut, so the gradients are the same bit for bit; with more
 * ranks the backend may add in another order (float addition is not associative), a difference of
 * the order of float rounding.
 */
final class GradBuckets {
  private record Entry(String name, Tensor param) {}

  private record Sent(int owner, List<Entry> entries, Tensor flat, Group.Pending pending) {}

  private final Group group;
  private final Shards shards;
  private final long cap;
  private final int rank, world;
  private final Map<String, List<Entry>> open =
      new TreeMap<>(); // "owner/dtype": the same order on every rank
  private final Map<String, Long> openElements = new TreeMap<>();
  private List<Sent> inFlight = new ArrayList<>();

  GradBuckets(Group group, Shards shards, long cap) {
    this.group = group;
    this.shards = shards;
    this.cap = cap;
    this.rank = group.dist().rank();
    this.world = group.dist().worldSize();
  }

  /**
   * A stage's gradients are complete ({@code params}, the same names in the same order on every
   * rank): they join their buckets, full buckets are sent, and the buckets sent at the previous
   * stage are completed. {@code last}: the end of backward; {@code average}: the step's last
   * micro-batch, whose sums the owners divide by the world size.
   */
  void stageDone(Map<String, Tensor> params, boolean last, boolean average) {
    List<Sent> earlier = inFlight; // sent at the previous stage: its transfer overlapped this one
    inFlight = new ArrayList<>();
    for (var e : params.entrySet()) {
      Tensor p = e.getValue();
      String key = shards.ownerOf(e.getKey()) + "/" + p.dtype();
      open.computeIfAbsent(key, k -> new ArrayList<>()).add(new Entry(e.getKey(), p));
      if (openElements.merge(key, p.numel(), Long::sum) >= cap) send(key);
    }
    if (last) for (String key : List.copyOf(open.keySet())) send(key);
    complete(earlier, average);
    if (!last) return;
    complete(inFlight, average);
    inFlight = new ArrayList<>();
  }

  /** Flattens the bucket {@code key} (unused weights count as zeros) and starts its reduce. */
  private void send(String key) {
    List<Entry> entries = open.remove(key);
    openElements.remove(key);
    int owner = shards.ownerOf(entries.getFirst().name());
    Tensor flat;
    try (Scope s = Scope.open()) {
      List<Tensor> parts = new ArrayList<>(entries.size());
      for (Entry e : entries) {
        Tensor g = e.param().grad();
        parts.add(
            g != null
                ? g.reshape(-1)
                : Torch.zeros(e.param().dtype(), e.param().device(), e.param().numel()));
      }
      flat = Torch.cat(parts, 0).retain();
    }
    if (owner != rank) for (Entry e : entries) e.param().clearGrad();
    inFlight.add(new Sent(owner, entries, flat, group.reduceSumAsync(flat, owner)));
  }

  /** Waits for {@code sent}; the owner's gradients become the sums (averaged when asked). */
  private void complete(List<Sent> sent, boolean average) {
    for (Sent b : sent) {
      b.pending().await();
      if (b.owner() == rank)
        try (Scope s = Scope.open()) {
          long at = 0;
          for (Entry e : b.entries()) {
            Tensor p = e.param();
            Tensor sum = b.flat().narrow(0, at, p.numel()).view(p.shape());
            at += p.numel();
            Tensor g = p.grad();
            if (g == null) p.raw().mutable_grad().put(sum.copy().raw());
            else g.copy_(sum);
            if (average) p.grad().raw().div_(new org.bytedeco.pytorch.Scalar(world));
          }
        }
      b.flat().release();
    }
  }
}
