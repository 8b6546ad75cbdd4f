package dev.hanlin.train.parallel;

import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Group;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.ToIntFunction;

/**
 * Gradients summed over the ranks while backward goes on, in buckets: ZeRO-2's reduce onto each
 * gradient's owner with DeepSpeed's {@code overlap_comm}, and data parallelism's all-reduce under
 * the explicit backward (whose gradients bypass the autograd hooks DDP's Reducer listens to; {@link
 * #EVERY_RANK} as the owner). As backward finishes a stage's gradients they join a bucket per owner
 * (and dtype); a bucket of at least {@code cap} elements is flattened into one buffer and sent
 * asynchronously, so the transfer runs while backward recomputes and differentiates the next block.
 * A bucket is completed at the end of the next stage (one stage of overlap, which also bounds the
 * buffers alive at once): the owner (every rank, for an all-reduce) copies the sums back into its
 * gradients; the other ranks freed theirs when the bucket was flattened. At the end of backward
 * ({@code -1}) every partial bucket is sent and all are completed, before the optimizer step.
 *
 * <p>The sums are those of {@link Shards#reduceGrads}, element by element: with two ranks each is
 * {@code a + b} however the buffer is cut, so the gradients are the same bit for bit; with more
 * ranks the backend may add in another order (float addition is not associative), a difference of
 * the order of float rounding.
 */
final class GradBuckets {
  private record Entry(String name, Tensor param) {}

  private record Sent(int owner, List<Entry> entries, Tensor flat, Group.Pending pending) {}

  /** The owner of a gradient every rank gets the sum of (an all-reduce). */
  static final int EVERY_RANK = -1;

  private final Group group;
  private final ToIntFunction<String> ownerOf;
  private final long cap;
  private final int rank, world;
  private final Map<String, List<Entry>> open =
      new TreeMap<>(); // "owner/dtype": the same order on every rank
  private final Map<String, Long> openElements = new TreeMap<>();
  private List<Sent> inFlight = new ArrayList<>();

  /** {@code ownerOf}: the rank that gets each gradient's sum, or {@link #EVERY_RANK}. */
  GradBuckets(Group group, ToIntFunction<String> ownerOf, long cap) {
    this.group = group;
    this.ownerOf = ownerOf;
    this.cap = cap;
    this.rank = group.dist().rank();
    this.world = group.dist().worldSize();
  }

  /** {@code trainable} grouped by backward stage ({@code stageOf}), each group in its order. */
  static Map<Integer, Map<String, Tensor>> byStage(
      Map<String, Tensor> trainable, ToIntFunction<String> stageOf) {
    Map<Integer, Map<String, Tensor>> out = new HashMap<>();
    trainable.forEach(
        (k, v) ->
            out.computeIfAbsent(stageOf.applyAsInt(k), st -> new LinkedHashMap<>()).put(k, v));
    return out;
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
      String key = ownerOf.applyAsInt(e.getKey()) + "/" + p.dtype();
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
    int owner = ownerOf.applyAsInt(entries.getFirst().name());
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
    if (owner == EVERY_RANK) {
      inFlight.add(new Sent(owner, entries, flat, group.allReduceSumAsync(flat)));
      return;
    }
    if (owner != rank) for (Entry e : entries) e.param().clearGrad();
    inFlight.add(new Sent(owner, entries, flat, group.reduceSumAsync(flat, owner)));
  }

  /** Waits for {@code sent}; the owner's gradients become the sums (averaged when asked). */
  private void complete(List<Sent> sent, boolean average) {
    for (Sent b : sent) {
      b.pending().await();
      if (b.owner() == rank || b.owner() == EVERY_RANK)
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
