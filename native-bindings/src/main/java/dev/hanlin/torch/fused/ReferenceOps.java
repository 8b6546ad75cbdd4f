package dev.hanlin.torch.fused;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.List;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;

/**
 * {@link BlockOps} in plain libtorch ops, on any device: the CPU path, and the reference that the
 * fused kernels are checked against. Forwards follow HF's Llama numerics (as {@code RmsNorm},
 * {@code Rotary} and {@code FeedForward} compute them); backwards are the analytic formulas, each
 * evaluated in float32 and cast back to the input's dtype. Legend: N = rows, C = channels, I =
 * intermediate size, V = vocabulary.
 */
public final class ReferenceOps implements BlockOps {
  private static final ReferenceOps INSTANCE = new ReferenceOps();

  private ReferenceOps() {}

  /** The one instance (it holds no state). */
  public static BlockOps reference() {
    return INSTANCE;
  }

  @Override
  public Normed rmsNorm(Tensor x, Tensor weight, double eps) {
    Tensor xf = x.toFloat(); // (N, C)
    Tensor rstd = xf.pow(2).mean(-1, true).add(eps).rsqrt(); // (N, 1)
    Tensor y = weight.mul(xf.mul(rstd).to(x.dtype()));
    return new Normed(y, rstd.view(x.size(0)));
  }

  @Override
  public AddNormed addRmsNorm(Tensor x, Tensor delta, Tensor weight, double eps) {
    Tensor h = x.add(delta);
    Normed n = rmsNorm(h, weight, eps);
    return new AddNormed(h, n.y(), n.rstd());
  }

  /**
   * With {@code n = x·rstd}: {@code dweight = Σ_rows dy·n}, and {@code dx = rstd·(dn −
   * n·mean(dn·n))} for {@code dn = dy·weight}.
   */
  @Override
  public NormGrads rmsNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor rstd) {
    Tensor r = rstd.view(x.size(0), 1); // (N, 1)
    Tensor n = x.toFloat().mul(r); // (N, C) float32, before the cast to x's dtype
    Tensor dyf = dy.toFloat();
    // the cast of n to x's dtype is in the forward: dweight sees the rounded n
    Tensor dweight = sumRows(dyf.mul(n.to(x.dtype()).toFloat()));
    Tensor dn = dyf.mul(weight.toFloat()); // (N, C)
    Tensor dx = r.mul(dn.sub(n.mul(dn.mul(n).mean(-1, true))));
    return new NormGrads(dx.to(x.dtype()), dweight);
  }

  @Override
  public Tensor rope(Tensor x, Tensor cos, Tensor sin) {
    return x.mul(cos).add(rotateHalf(x, false).mul(sin));
  }

  /** The transpose of {@code x·cos + R(x)·sin}: {@code dy·cos + Rᵀ(dy·sin)}, {@code Rᵀ = −R}. */
  @Override
  public Tensor ropeBackward(Tensor dy, Tensor cos, Tensor sin) {
    return dy.mul(cos).add(rotateHalf(dy.mul(sin), true));
  }

  /**
   * {@code R(x) = [−x₂, x₁]} over the halves of the last dimension, or {@code Rᵀ(x) = [x₂, −x₁]}.
   */
  private static Tensor rotateHalf(Tensor x, boolean transposed) {
    long half = x.size(-1) / 2;
    Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
    return transposed ? Torch.cat(List.of(x2, x1.neg()), -1) : Torch.cat(List.of(x2.neg(), x1), -1);
  }

  /**
   * Column slices (of the fused gate/up output) are copied first: libtorch's CPU kernels run a
   * strided row with a scalar tail, so this keeps the values bitwise as they were on contiguous
   * tensors (no copy when they are contiguous already).
   */
  @Override
  public Tensor swiglu(Tensor gate, Tensor up) {
    return Torch.silu(gate.contiguous()).mul(up.contiguous());
  }

  /** {@code d up = dy·silu(g)}, {@code d gate = dy·up·σ(g)·(1 + g·(1 − σ(g)))}. */
  @Override
  public SwigluGrads swigluBackward(Tensor dy, Tensor gate, Tensor up) {
    gate = gate.contiguous(); // as in swiglu
    up = up.contiguous();
    Tensor g = gate.toFloat(), dyf = dy.toFloat();
    Tensor sig = Tensor.wrap(g.raw().sigmoid());
    Tensor dup = dyf.mul(g.mul(sig));
    Tensor dsilu = sig.mul(g.mul(sig.neg().add(1)).add(1));
    Tensor dgate = dyf.mul(up.toFloat()).mul(dsilu);
    return new SwigluGrads(dgate.to(gate.dtype()), dup.to(up.dtype()));
  }

  @Override
  public LossAndGrad crossEntropy(Tensor logits, Tensor labels, double scale) {
    Tensor lf = logits.toFloat(); // (N, V)
    Tensor valid = labels.ne(Torch.IGNORE_INDEX); // (N) bool
    Tensor safe =
        Tensor.wrap(
            org.bytedeco.pytorch.global.torch.where(
                valid.raw(), labels.raw(), new Scalar(0L))); // (N) ignored rows read label 0
    Tensor validF = valid.toFloat();
    Tensor lse = Tensor.wrap(lf.raw().logsumexp(new long[] {-1}, false)); // (N)
    Tensor picked = Tensor.wrap(lf.raw().gather(1, safe.unsqueeze(1).raw())).view(-1); // (N)
    Tensor lossSum = lse.sub(picked).mul(validF).sum();
    Tensor d = lf.sub(lse.unsqueeze(1)).exp(); // softmax (N, V)
    // minus one at each row's label, in place: no (N, V) one-hot beside the softmax
    Tensor minusOne = Torch.full(-1.0, DType.F32, logits.device(), logits.size(0), 1);
    d.raw().scatter_add_(1, safe.unsqueeze(1).raw(), minusOne.raw());
    d = d.mul(validF.mul(scale).unsqueeze(1));
    return new LossAndGrad(lossSum, d.to(logits.dtype()));
  }

  private static Tensor sumRows(Tensor t) {
    return Tensor.wrap(t.raw().sum(new long[] {0}, false, new ScalarTypeOptional()));
  }
}
