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
 *   <li>CUDA: dropout is one fused kernel ({@code native_dropout}) computing {@code x · m · scale}
 *       in float; the draw depends on the dtype, the element count and the alignment (its vector
 *       width), not on the values. {@code dropout(ones)} gives the mask ({@code ≠ 0}), then the
 *       generator is set back and {@code dropout(x)} itself runs: the forward values are that op's,
 *       bitwise, and backward is {@code dy · m · (1/(1-p))} as {@code native_dropout_backward}
 *       computes it. Two draws: the facade ({@code Torch}) does not expose libtorch's {@code
 *       native_dropout}, which returns the mask beside the values in one kernel.
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
      Tensor g = dy.mul(keep);
      return scale == 1 ? g : g.mul(scale);
    }
  }

  /** Drops out {@code x} with probability {@code p} > 0 as the autograd path's next draw would. */
  static Drawn draw(Tensor x, double p) {
    return new Input(x, x.device().isCuda()).draw(p);
  }

  /** As above, the CUDA way ({@code redraw}) or the CPU way; for tests. */
  static Drawn draw(Tensor x, double p, boolean redraw) {
    return new Input(x, redraw).draw(p);
  }

  /**
   * One input that several adapters read (q/k/v; gate/up), each drawing its own mask in turn: one
   * tensor of ones serves all their draws. With {@code redraw}, the CUDA way (the mask from the
   * ones, then the op itself on x from the same state); without, the CPU way ({@code x ·
   * dropout(ones)}). Both are exact on the CPU, so its tests check the logic the CUDA path takes.
   */
  static final class Input {
    private final Tensor x;
    private final boolean redraw;
    private Tensor ones;

    Input(Tensor x) {
      this(x, x.device().isCuda());
    }

    Input(Tensor x, boolean redraw) {
      // The draw follows the tensor's layout: a fresh dense tensor (as the ones are) draws the
      // same masks; the explicit pass's inputs are fresh op outputs, so this copies nothing there.
      if (!x.isContiguous()) x = x.contiguous();
      else if (x.dataAddress() % 16 != 0) x = x.copy(); // a contiguous clone, aligned
      this.x = x;
      this.redraw = redraw;
    }

    /** The next draw, with probability {@code p} > 0. */
    Drawn draw(double p) {
      Device dev = x.device();
      if (ones == null) ones = Torch.ones(x.dtype(), dev, x.shape());
      Tensor state = redraw ? Torch.rngState(dev) : null;
      Tensor noise = Torch.dropout(ones, p, true); // mask / (1-p)
      if (!redraw) return new Drawn(x.mul(noise), new Mask(noise, 1));
      Torch.setRngState(dev, state);
      return new Drawn(Torch.dropout(x, p, true), new Mask(noise.ne(0), 1 / (1 - p)));
    }
  }
}
