package dev.hanlin.train.explicit;

import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/**
 * LoRA dropout in the explicit passes, drawn so that a seeded run draws what the autograd path
 * draws: the model's {@code LoraLinear} runs {@code Torch.dropout(x, p, true)} on each adapted
 * layer's input, and this draws from the same generator state, on a tensor of the same shape, dtype
 * and device, in the same order (the caller's: q, k, v, o, gate, up, down). That op returns no
 * mask, and backward needs one ({@code dx = dy · mask / (1-p)}), so the mask comes from dropping
 * out a tensor of ones first:
 *
 * <ul>
 *   <li>CPU: libtorch's dropout there is {@code x · noise} with {@code noise = bernoulli(1-p) /
 *       (1-p)} in x's dtype, drawn from the shape alone; {@code dropout(ones)} is that noise,
 *       exactly, so {@code x · noise} is bitwise {@code dropout(x)} and {@code dy · noise} bitwise
 *       autograd's backward. One draw.
 *   <li>CUDA: dropout is {@code native_dropout}, one fused kernel returning the mask beside the
 *       values; it runs here itself ({@link Torch#nativeDropout}), and backward is its autograd
 *       backward, {@code native_dropout_backward}: both bitwise autograd's.
 * </ul>
 */
final class LoraDropout {
  private LoraDropout() {}

  /** The dropped input (x's dtype) and what backward multiplies the input's gradient by. */
  record Drawn(Tensor dropped, Mask mask) {}

  /**
   * {@code dy · keep · scale}: {@code keep} is the scaled noise itself (CPU, {@code scale} 1), or
   * the bool mask with {@code scale} = 1/(1-p) (CUDA).
   */
  record Mask(Tensor keep, double scale) {
    Tensor backward(Tensor dy) {
      return scale == 1 ? dy.mul(keep) : Torch.nativeDropoutBackward(dy, keep, scale);
    }

    /**
     * {@code dx += backward(dy)} in one pass ({@code dx + scale · dy · keep}, rounded once where
     * the two calls round twice): how the adapters' input gradients are summed.
     */
    void addBackward(Tensor dx, Tensor dy) {
      dx.addcmul_(dy, keep, scale);
    }
  }

  /** Drops out {@code x} with probability {@code p} > 0 as the autograd path's next draw would. */
  static Drawn draw(Tensor x, double p) {
    return new Input(x).draw(p);
  }

  /**
   * One input that several adapters read (q/k/v; gate/up), each drawing its own mask in turn: on
   * the CPU one tensor of ones serves all their draws.
   */
  static final class Input {
    private final Tensor x;
    private Tensor ones;

    Input(Tensor x) {
      this.x = x;
    }

    /** The next draw, with probability {@code p} > 0. */
    Drawn draw(double p) {
      Device dev = x.device();
      if (dev.isCuda()) { // the op Torch.dropout runs there, with its mask: one kernel
        Tensor[] r = Torch.nativeDropout(x, p);
        return new Drawn(r[0], new Mask(r[1], 1 / (1 - p)));
      }
      if (ones == null) ones = Torch.ones(x.dtype(), dev, x.shape());
      Tensor noise = Torch.dropout(ones, p, true); // mask / (1-p), the draw dropout(x) makes
      return new Drawn(x.mul(noise), new Mask(noise, 1));
    }
  }
}
