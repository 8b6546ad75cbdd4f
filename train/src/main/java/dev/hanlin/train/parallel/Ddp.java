package dev.hanlin.train.parallel;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.dist.DistException;
import dev.hanlin.torch.dist.Group;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.function.ToIntFunction;
import org.bytedeco.pytorch.BoolVector;
import org.bytedeco.pytorch.Reducer;
import org.bytedeco.pytorch.SizeTStringMap;
import org.bytedeco.pytorch.SizeTVector;
import org.bytedeco.pytorch.SizeTVectorVector;
import org.bytedeco.pytorch.TensorVector;

/**
 * Data-parallel gradients through libtorch's {@code c10d::Reducer}, the engine under PyTorch's
 * DistributedDataParallel: autograd hooks copy each gradient into a bucket as soon as backward
 * produces it, and a full bucket is all-reduced (averaged over the ranks) while backward goes on,
 * so communication overlaps computation. Micro-batches that only accumulate skip the hooks and the
 * communication, as DDP's {@code no_sync()}. The model is not touched: this wraps its parameters.
 * Every rank updates every parameter with the averaged gradients.
 *
 * <p>The explicit backward writes gradients without autograd, so no hook fires: there the step's
 * last micro-batch hands each backward stage's gradients to {@link GradBuckets} as the stage ends,
 * which all-reduces them in buckets while the next stages run, and averages them.
 */
final class Ddp implements Parallelism {
  /** DDP's defaults: a small first bucket so communication starts early, then 25 MiB. */
  public static final long FIRST_BUCKET_BYTES = 1L << 20, BUCKET_BYTES = 25L << 20;

  private final Group group;
  private final ToIntFunction<String> explicitStages; // null: autograd's backward, the Reducer
  private Reducer reducer;
  private GradBuckets buckets; // the explicit backward's all-reduce
  private Map<Integer, Map<String, Tensor>> byStage;
  private long syncStart = System.nanoTime(); // when the last synced micro-batch began

  Ddp(Group group) {
    this(group, null);
  }

  /**
   * {@code explicitStages}: the explicit backward runs, and this names each weight's backward stage
   * (null: autograd's backward, through the Reducer).
   */
  Ddp(Group group, ToIntFunction<String> explicitStages) {
    this.group = group;
    this.explicitStages = explicitStages;
  }

  @Override
  public Group group() {
    return group;
  }

  /**
   * Every rank starts from rank 0's weights; then hooks {@code trainable} (leaf tensors that
   * require grad, in the same order on every rank). Their gradients become views into the
   * communication buckets, so they cost no extra memory.
   */
  @Override
  public void start(Map<String, Tensor> trainable) {
    group.broadcast(trainable.values(), 0);
    if (!group.isDistributed()) return;
    if (explicitStages != null) {
      byStage = GradBuckets.byStage(trainable, explicitStages);
      buckets = new GradBuckets(group, n -> GradBuckets.EVERY_RANK, BUCKET_BYTES / 4);
      return;
    }
    List<Tensor> params = List.copyOf(trainable.values());
    TensorVector v = new TensorVector();
    BoolVector sparse = new BoolVector();
    for (Tensor p : params) {
      v.push_back(p.raw());
      sparse.push_back(false);
    }
    SizeTVectorVector buckets = new SizeTVectorVector();
    for (List<Integer> b : buckets(params, FIRST_BUCKET_BYTES, BUCKET_BYTES)) {
      SizeTVector s = new SizeTVector();
      for (int i : b) s.push_back(i);
      buckets.push_back(s);
    }
    reducer =
        new Reducer(
            v,
            buckets,
            group.nativeGroup(),
            sparse,
            BUCKET_BYTES,
            false,
            true,
            new SizeTStringMap(),
            FIRST_BUCKET_BYTES,
            false,
            false);
  }

  /**
   * Buckets of parameter indices in the order backward makes their gradients (last parameter
   * first), each up to {@code cap} bytes, the first up to {@code firstCap}.
   */
  static List<List<Integer>> buckets(List<Tensor> params, long firstCap, long cap) {
    List<List<Integer>> out = new ArrayList<>();
    List<Integer> cur = new ArrayList<>();
    long bytes = 0;
    for (int i = params.size() - 1; i >= 0; i--) {
      cur.add(i);
      bytes += params.get(i).byteSize();
      if (bytes >= (out.isEmpty() ? firstCap : cap)) {
        out.add(cur);
        cur = new ArrayList<>();
        bytes = 0;
      }
    }
    if (!cur.isEmpty()) out.add(cur);
    return out;
  }

  /**
   * Before a micro-batch's forward (and its backward, however that is run). {@code sync}: this
   * micro-batch's backward ends the step: it returns with every gradient averaged over the ranks.
   * Otherwise backward only accumulates locally, with no communication.
   */
  @Override
  public void beforeMicroBatch(boolean sync) {
    if (reducer == null) return;
    try {
      reducer.rebuild_buckets(); // after the first synced step: buckets in actual gradient order
      if (!sync) return;
      syncStart = System.nanoTime();
      reducer.prepare_for_forward();
      reducer.prepare_for_backward(new TensorVector());
    } catch (RuntimeException e) {
      throw group.failed("preparing the gradient all-reduce", System.nanoTime(), e);
    }
  }

  /**
   * Under the explicit backward, the step's last micro-batch all-reduces each stage's gradients as
   * it ends; earlier micro-batches only accumulate (as {@code no_sync()}).
   */
  @Override
  public IntConsumer afterBackwardStage(Map<String, Tensor> trainable, boolean last) {
    if (buckets == null || !last) return null;
    return stage -> buckets.stageDone(byStage.getOrDefault(stage, Map.of()), stage == -1, true);
  }

  /**
   * A failure of a forward/backward that may have been the gradient all-reduce (the Reducer runs it
   * inside backward) said as such; other failures (out of memory) are returned as they are.
   */
  @Override
  public RuntimeException explain(RuntimeException e) {
    if (reducer == null || e instanceof DistException) return e;
    String m = String.valueOf(e.getMessage()).toLowerCase(java.util.Locale.ROOT);
    boolean comm =
        m.contains("gloo")
            || m.contains("nccl")
            || m.contains("c10d")
            || m.contains("connection")
            || m.contains("timed out")
            || m.contains("timeout");
    return comm ? group.failed("gradient all-reduce", syncStart, e) : e;
  }
}
