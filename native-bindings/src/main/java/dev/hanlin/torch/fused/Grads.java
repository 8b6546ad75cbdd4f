package dev.hanlin.torch.fused;

import dev.hanlin.torch.Tensor;

/**
 * Gradients written into a weight's {@code .grad} as autograd writes them: set on the first
 * contribution (a fresh tensor in the weight's dtype), added after, so that gradient accumulation,
 * clipping, data parallelism and master weights read them as they read autograd's.
 */
public final class Grads {
  private Grads() {}

  /** Adds {@code g} (the weight's shape, any float dtype) to {@code param}'s gradient. */
  public static void accumulate(Tensor param, Tensor g) {
    org.bytedeco.pytorch.Tensor cur = param.raw().grad();
    if (cur == null || !cur.defined()) {
      Tensor fresh = g.to(param.dtype()).contiguous();
      if (fresh.raw().data_ptr().address() == g.raw().data_ptr().address()) fresh = g.copy();
      param.raw().mutable_grad().put(fresh.raw());
    } else {
      cur.add_(g.raw());
    }
  }

  /** Adds the rows {@code dx} (N, C) to the rows {@code ids} (N) of {@code table}'s gradient. */
  public static void accumulateRows(Tensor table, Tensor ids, Tensor dx) {
    org.bytedeco.pytorch.Tensor cur = table.raw().grad();
    if (cur == null || !cur.defined()) {
      Tensor z = dev.hanlin.torch.Torch.zeros(table.dtype(), table.device(), table.shape());
      table.raw().mutable_grad().put(z.raw());
      cur = table.raw().grad();
    }
    cur.index_add_(0, ids.raw(), dx.to(table.dtype()).raw());
  }
}
