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
 * (x Aᵢᵀ) Bᵢᵀ}, dropout 0). The concatenation is made for each product from the named weights, so
 * the model's tensors and HF names stay as they are, and the weight gradient is split back into
 * each named weight's {@code .grad}. Legend: N = rows, K = input features, O = summed outputs, r =
 * LoRA rank.
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
   * Each part's output (N, Oᵢ) of {@code x} (N, K) in the compute dtype; {@code loraIn[i]} gets
   * part i's {@code x Aᵢᵀ} (N, r), which its backward needs (null without an adapter).
   */
  Tensor[] forward(Tensor x, Tensor[] loraIn) {
    Tensor y = Torch.linear(x, fused(), null); // (N, O) — timing point: GEMM
    Tensor[] out = new Tensor[parts.size()];
    long off = 0;
    for (int i = 0; i < out.length; i++) {
      long o = weight(parts.get(i)).size(0);
      out[i] = parts.size() == 1 ? y : y.narrow(1, off, o);
      off += o;
      LoraLinear a = parts.get(i).lora();
      if (a != null) {
        loraIn[i] = Torch.linear(x, a.a().to(cd), null); // (N, r)
        out[i] = out[i].add(Torch.linear(loraIn[i], a.b().to(cd), null).mul(a.scaling()));
      }
    }
    return out;
  }

  /**
   * The input's gradient (N, K) in the compute dtype from each part's output gradient {@code dys}
   * (N, Oᵢ); adds the weights' and adapters' gradients to their {@code .grad} (those that require
   * one).
   */
  Tensor backward(Tensor[] dys, Tensor x, Tensor[] loraIn) {
    return backward(dys.length == 1 ? dys[0] : Torch.cat(List.of(dys), 1), x, loraIn);
  }

  /**
   * As {@link #backward(Tensor[], Tensor, Tensor[])} from the parts' output gradients already side
   * by side in one (N, O) tensor, as the fused kernels write them (no concatenation).
   */
  Tensor backward(Tensor dy, Tensor x, Tensor[] loraIn) {
    Tensor w = fused();
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
      Tensor da = g.matmul(a.b().to(cd)); // (N, r)
      if (a.b().requiresGrad()) Grads.accumulate(a.b(), g.transpose(0, 1).matmul(loraIn[i]), true);
      if (a.a().requiresGrad()) Grads.accumulate(a.a(), da.transpose(0, 1).matmul(x), true);
      sum.add(da.matmul(a.a().to(cd)));
    }
    Tensor total = sum.getFirst();
    for (int i = 1; i < sum.size(); i++) total = total.add(sum.get(i));
    return total;
  }
}
