package dev.hanlin.train.explicit;

import dev.hanlin.model.BaseWeight;
import dev.hanlin.model.Linear;
import dev.hanlin.model.LoraLinear;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.fused.Grads;
import java.util.ArrayList;
import java.util.List;

/**
 * Linear layers that share their input (q/k/v, gate/up, or one alone) run as one GEMM over their
 * weights concatenated in the compute dtype, each with its LoRA update beside it ({@code y_i += s ·
 * (dropoutᵢ(x) Aᵢᵀ) Bᵢᵀ}, each adapter drawing its own dropout mask, as PEFT's one {@code
 * nn.Dropout} per adapted module does). The concatenation is made for each product from the named
 * weights, so the model's tensors and HF names stay as they are, and the weight gradient is split
 * back into each named weight's {@code .grad}. Legend: N = rows, K = input features, O = summed
 * outputs, r = LoRA rank.
 */
final class Projection {
  private final List<Linear> parts;
  private final DType cd;

  Projection(DType cd, Linear... parts) {
    this.parts = List.of(parts);
    this.cd = cd;
  }

  private static Tensor weight(Linear l) {
    return ((BaseWeight.Dense) l.weight()).tensor();
  }

  /**
   * The weights (O, K) in the compute dtype, one tensor: a copy per call (the cast that autocast
   * makes anyway, in one pass), or the weight itself when alone and already in that dtype.
   */
  private Tensor fused() {
    if (parts.size() == 1) return weight(parts.getFirst()).to(cd);
    long rows = 0, in = weight(parts.getFirst()).size(1);
    for (Linear l : parts) rows += weight(l).size(0);
    Tensor w = Torch.empty(cd, weight(parts.getFirst()).device(), rows, in);
    long off = 0;
    for (Linear l : parts) {
      long o = weight(l).size(0);
      w.narrow(0, off, o).copy_(weight(l));
      off += o;
    }
    return w;
  }

  /**
   * What one forward keeps for its backward. Each part's adapter (null where a part has none):
   * {@code xa} its {@code x' Aᵢᵀ} (N, r), {@code a} and {@code b} its A and B in the compute dtype
   * (cast once per pass), and with dropout {@code dropped} its input x' after dropout in the
   * compute dtype (N, K, what A's gradient takes) and {@code masks} its mask; without dropout x' is
   * the shared input. {@code weight[0]}: the fused weight, when held for the backward.
   */
  record Saved(
      Tensor[] xa,
      Tensor[] a,
      Tensor[] b,
      Tensor[] dropped,
      LoraDropout.Mask[] masks,
      boolean holdWeight,
      Tensor[] weight) {
    /** Every tensor held, for the forward scope to keep. */
    List<Tensor> tensors() {
      List<Tensor> all = new ArrayList<>();
      for (Tensor[] ts : List.of(xa, a, b, dropped, weight))
        for (Tensor t : ts) if (t != null) all.add(t);
      for (LoraDropout.Mask m : masks) if (m != null) all.add(m.keep());
      return all;
    }
  }

  /**
   * An empty {@link Saved} for one forward; with {@code holdWeight} it keeps the fused weight for
   * the backward (a recompute's, whose backward follows at once: the weight is made once, not
   * twice, bitwise the same; not when every block's activations are kept, as it would then stay for
   * every block).
   */
  Saved saved(boolean holdWeight) {
    int n = parts.size();
    return new Saved(
        new Tensor[n],
        new Tensor[n],
        new Tensor[n],
        new Tensor[n],
        new LoraDropout.Mask[n],
        holdWeight,
        new Tensor[1]);
  }

  /**
   * Each part's output (N, Oᵢ) of {@code x} (N, K) in the compute dtype; {@code loraX} is the same
   * input as the model's LoRA layers see it under autograd (before the cast to the compute dtype:
   * dropout draws by its dtype), and {@code saved} gets what the backward needs. Dropout is drawn
   * part by part, in order, as the model's layers draw it.
   */
  Tensor[] forward(Tensor x, Tensor loraX, Saved saved) {
    Tensor w = fused();
    if (saved.holdWeight()) saved.weight()[0] = w;
    Tensor y = Torch.linear(x, w, null); // (N, O) — timing point: GEMM
    Tensor[] out = new Tensor[parts.size()];
    LoraDropout.Input drop = null;
    long off = 0;
    for (int i = 0; i < out.length; i++) {
      long o = weight(parts.get(i)).size(0);
      out[i] = parts.size() == 1 ? y : y.narrow(1, off, o);
      off += o;
      LoraLinear a = parts.get(i).lora();
      if (a == null) continue;
      Tensor in = x;
      if (a.dropout() > 0) {
        if (drop == null) drop = new LoraDropout.Input(loraX);
        LoraDropout.Drawn d = drop.draw(a.dropout());
        in = saved.dropped()[i] = d.dropped().to(cd);
        saved.masks()[i] = d.mask();
      }
      saved.a()[i] = a.a().to(cd);
      saved.b()[i] = a.b().to(cd);
      saved.xa()[i] = Torch.linear(in, saved.a()[i], null); // (N, r)
      out[i] = out[i].add(Torch.linear(saved.xa()[i], saved.b()[i], null).mul_(a.scaling()));
    }
    return out;
  }

  /**
   * The input's gradient (N, K) in the compute dtype from each part's output gradient {@code dys}
   * (N, Oᵢ); adds the weights' and adapters' gradients to their {@code .grad} (those that require
   * one).
   */
  Tensor backward(Tensor[] dys, Tensor x, Saved saved) {
    return backward(dys.length == 1 ? dys[0] : Torch.cat(List.of(dys), 1), x, saved);
  }

  /**
   * As {@link #backward(Tensor[], Tensor, Saved)} from the parts' output gradients already side by
   * side in one (N, O) tensor, as the fused kernels write them (no concatenation).
   */
  Tensor backward(Tensor dy, Tensor x, Saved saved) {
    Tensor w = saved.weight()[0] != null ? saved.weight()[0] : fused();
    Tensor dx = dy.matmul(w); // (N, K) — timing point: GEMM
    if (parts.stream().anyMatch(l -> weight(l).requiresGrad())) {
      Tensor dw = dy.transpose(0, 1).matmul(x); // (O, K)
      long off = 0;
      for (Linear l : parts) {
        long o = weight(l).size(0);
        // a lone weight's gradient is the product itself; fused ones are copied out of it
        boolean alone = parts.size() == 1;
        if (weight(l).requiresGrad())
          Grads.accumulate(weight(l), alone ? dw : dw.narrow(0, off, o), alone);
        off += o;
      }
    }
    List<Tensor> sum = new ArrayList<>(List.of(dx));
    long at = 0;
    for (int i = 0; i < parts.size(); i++) {
      LoraLinear a = parts.get(i).lora();
      long o = weight(parts.get(i)).size(0);
      Tensor dyi = parts.size() == 1 ? dy : dy.narrow(1, at, o); // (N, Oᵢ)
      at += o;
      if (a == null) continue;
      Tensor g = dyi.mul(a.scaling()); // (N, Oᵢ)
      Tensor da = g.matmul(saved.b()[i]); // (N, r)
      Tensor in = saved.dropped()[i] != null ? saved.dropped()[i] : x; // A's input
      if (a.b().requiresGrad())
        Grads.accumulate(a.b(), g.transpose(0, 1).matmul(saved.xa()[i]), true);
      if (a.a().requiresGrad()) Grads.accumulate(a.a(), da.transpose(0, 1).matmul(in), true);
      Tensor dxi = da.matmul(saved.a()[i]); // (N, K), through the dropout when there is one
      sum.add(saved.masks()[i] != null ? saved.masks()[i].backward(dxi) : dxi);
    }
    Tensor total = sum.getFirst();
    for (int i = 1; i < sum.size(); i++) total = total.add(sum.get(i));
    return total;
  }
}
