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
 * nn.Dropout} per adapted module does). Trained weights are concatenated for each product and the
 * weight gradient is split back into each named weight's {@code .grad}; a frozen base is joined
 * into one buffer once, each named weight a view of its rows ({@link #join}). Either way the
 * model's tensors and HF names stay as they are. Legend: N = rows, K = input features, O = summed
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
   * The weights (O, K) in the compute dtype, one tensor. Parts already side by side in one storage
   * (see {@link #join}) are read there as they are; a frozen base in the compute dtype is moved so
   * once, on its first product. Otherwise a copy per call (the cast that autocast makes anyway, in
   * one pass), or the weight itself when alone and already in that dtype.
   */
  private Tensor fused() {
    if (parts.size() == 1) return weight(parts.getFirst()).to(cd);
    Tensor joined = joined();
    if (joined != null) return joined;
    if (parts.stream().allMatch(l -> !weight(l).requiresGrad() && weight(l).dtype() == cd)) {
      join();
      return joined();
    }
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
   * The parts' weights as one (O, K) view when they are consecutive rows of one storage in the
   * compute dtype (as {@link #join} leaves them), else null.
   */
  private Tensor joined() {
    Tensor first = weight(parts.getFirst());
    long in = first.size(1), at = first.storageOffset(), rows = 0;
    for (Linear l : parts) {
      Tensor w = weight(l);
      if (w.dtype() != cd || !w.isContiguous() || !w.isAliasOf(first)) return null;
      if (w.storageOffset() != at + rows * in) return null;
      rows += w.size(0);
    }
    // the view spans the parts' rows, which the checks above place one after another from first's
    return first.asStrided(new long[] {rows, in}, new long[] {in, 1}, at);
  }

  /**
   * Moves the (frozen) weights into one new buffer, row blocks in the parts' order, and points each
   * named weight at its block ({@link Tensor#set_}: the same tensor everywhere it is held, values
   * unchanged, the old memory freed). A frozen weight never changes, so the fused product can read
   * the buffer for every forward and recompute instead of concatenating the weights again (a 7B
   * LoRA step did that twice per block, 281 MB each time).
   */
  private void join() {
    Tensor first = weight(parts.getFirst());
    long rows = 0, in = first.size(1);
    for (Linear l : parts) rows += weight(l).size(0);
    Tensor buf = Torch.empty(cd, first.device(), rows, in);
    long off = 0;
    for (Linear l : parts) {
      Tensor w = weight(l);
      long o = w.size(0);
      Tensor block = buf.narrow(0, off, o).copy_(w);
      w.set_(block);
      off += o;
    }
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
      // y_i += s · (x' Aᵀ) Bᵀ in place: one GEMM adding into the fused product's columns
      out[i].addmm_(saved.xa()[i], saved.b()[i].transpose(0, 1), 1, a.scaling());
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
    long at = 0;
    for (int i = 0; i < parts.size(); i++) {
      LoraLinear a = parts.get(i).lora();
      long o = weight(parts.get(i)).size(0);
      Tensor dyi = parts.size() == 1 ? dy : dy.narrow(1, at, o); // (N, Oᵢ)
      at += o;
      if (a == null) continue;
      // the scaling s is applied to the (N, r) and (Oᵢ, r) products, not to dyᵢ (N, Oᵢ)
      Tensor da = dyi.matmul(saved.b()[i]).mul_(a.scaling()); // (N, r): s · dyᵢ B
      Tensor in = saved.dropped()[i] != null ? saved.dropped()[i] : x; // A's input
      if (a.b().requiresGrad())
        Grads.accumulate(a.b(), dyi.transpose(0, 1).matmul(saved.xa()[i]).mul_(a.scaling()), true);
      if (a.a().requiresGrad()) Grads.accumulate(a.a(), da.transpose(0, 1).matmul(in), true);
      // dx += da A, through the dropout when there is one; dx is this call's own product
      if (saved.masks()[i] == null) dx.addmm_(da, saved.a()[i], 1, 1);
      else saved.masks()[i].addBackward(dx, da.matmul(saved.a()[i]));
    }
    return dx;
  }
}
