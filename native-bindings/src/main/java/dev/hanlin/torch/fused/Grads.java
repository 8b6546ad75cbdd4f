package dev.hanlin.torch.fused;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/**
 * Gradients written into a weight's {@code .grad} as autograd writes them: set on the first
 * contribution (a tensor of the weight's dtype of its own), added after, so that gradient
 * accumulation, clipping, data parallelism and master weights read them as they read autograd's.
 */
public final class Grads {
  private Grads() {}

  /** Adds {@code g} (the weight's shape, any float dtype; it may be a view) to the gradient. */
  public static void accumulate(Tensor param, Tensor g) {
    accumulate(param, g, false);
  }

  /**
   * As {@link #accumulate(Tensor, Tensor)}; {@code owned}: {@code g} is the caller's fresh tensor,
   * used by no one else, which may become the gradient itself (no copy, as autograd steals it).
   */
  public static void accumulate(Tensor param, Tensor g, boolean owned) {
    org.bytedeco.pytorch.Tensor cur = param.raw().grad();
    if (cur != null && cur.defined()) {
      cur.add_(g.raw());
      return;
    }
    Tensor fresh;
    if (g.dtype() != param.dtype()) fresh = g.to(param.dtype()).contiguous();
    else fresh = owned && g.isContiguous() ? g : g.contiguous().copy();
    param.raw().mutable_grad().put(fresh.raw());
  }

  /**
   * Adds the rows {@code dx} (N, C) to the rows {@code ids} (N) of {@code table}'s gradient,
   * summing repeated ids in float32 (as libtorch's embedding backward does) before the gradient's
   * dtype.
   */
  public static void accumulateRows(Tensor table, Tensor ids, Tensor dx) {
    Tensor sum = Torch.zeros(DType.F32, table.device(), table.shape());
    sum.raw().index_add_(0, ids.raw(), dx.toFloat().raw());
    accumulate(table, sum, true);
  }
}
