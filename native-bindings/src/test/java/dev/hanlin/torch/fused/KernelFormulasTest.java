package dev.hanlin.torch.fused;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.List;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;

/**
 * The formulas of block_ops.cu, written as libtorch ops on the CPU (every bf16 rounding where the
 * kernel has one, the backward formulas derived by hand as the kernels have them), against
 * libtorch's expressions and autograd: the GPU cannot run in CI, but a wrong derivative or index
 * mapping in a kernel fails here.
 */
class KernelFormulasTest extends BlockOpsCheck {
  @BeforeAll
  static void cpu() {
    dev = Device.CPU;
    ops = new Formulas();
  }

  /** block_ops.cu, line by line, as tensor ops. */
  static final class Formulas implements BlockOps {
    /** rt<T>: round to the dtype and back to float32. */
    private static Tensor rt(Tensor f, Tensor like) {
      return f.to(like.dtype()).toFloat();
    }

    @Override
    public Normed rmsNorm(Tensor x, Tensor w, double eps) {
      Tensor xf = x.toFloat();
      Tensor r = xf.mul(xf).mean(-1, false).add(eps).rsqrt();
      Tensor y = w.toFloat().mul(rt(xf.mul(r.unsqueeze(-1)), x)).to(x.dtype());
      return new Normed(y, r);
    }

    @Override
    public AddNormed addRmsNorm(Tensor x, Tensor delta, Tensor w, double eps) {
      Tensor h = x.toFloat().add(delta.toFloat()).to(x.dtype());
      Normed n = rmsNorm(h, w, eps);
      return new AddNormed(h, n.y(), n.rstd());
    }

    @Override
    public NormGrads rmsNormBackward(Tensor dy, Tensor x, Tensor w, Tensor rstd) {
      Tensor g = dy.toFloat();
      Tensor r = rstd.unsqueeze(-1);
      Tensor xh = x.toFloat().mul(r);
      Tensor dn = rt(g.mul(w.toFloat()), x);
      Tensor m = dn.mul(xh).mean(-1, true);
      Tensor dx = r.mul(dn.sub(xh.mul(m))).to(x.dtype());
      long c = x.size(-1);
      Tensor dw =
          Tensor.wrap(
              g.mul(rt(xh, x))
                  .reshape(-1, c)
                  .raw()
                  .sum(new long[] {0}, false, new org.bytedeco.pytorch.ScalarTypeOptional()));
      return new NormGrads(dx, dw);
    }

    @Override
    public Tensor rope(Tensor x, Tensor cos, Tensor sin) {
      long h = x.size(-1) / 2;
      Tensor xf = x.toFloat();
      Tensor rot = Torch.cat(List.of(xf.narrow(-1, h, h).neg(), xf.narrow(-1, 0, h)), -1);
      Tensor c = cos.to(x.dtype()).toFloat(), s = sin.to(x.dtype()).toFloat();
      return rt(xf.mul(c), x).add(rt(rot.mul(s), x)).to(x.dtype()).contiguous();
    }

    @Override
    public Tensor ropeBackward(Tensor dy, Tensor cos, Tensor sin) {
      long h = dy.size(-1) / 2;
      Tensor g = dy.toFloat();
      Tensor c = cos.to(dy.dtype()).toFloat(), s = sin.to(dy.dtype()).toFloat();
      Tensor a = rt(g.mul(c), dy);
      Tensor gs = rt(g.mul(s), dy); // gs[e] = dy[e] * sin[e]
      // dx[e] = a[e] + (e < h ? gs[e + h] : -gs[e - h])
      Tensor shifted = Torch.cat(List.of(gs.narrow(-1, h, h), gs.narrow(-1, 0, h).neg()), -1);
      return a.add(shifted).to(dy.dtype()).contiguous();
    }

    @Override
    public Tensor swiglu(Tensor gate, Tensor up) {
      Tensor g = gate.toFloat();
      Tensor s = rt(g.div(g.neg().exp().add(1)), gate);
      return s.mul(up.toFloat()).to(gate.dtype());
    }

    @Override
    public SwigluGrads swigluBackward(Tensor dy, Tensor gate, Tensor up) {
      Tensor g = gate.toFloat(), d = dy.toFloat();
      Tensor sig = g.neg().exp().add(1).pow(-1);
      Tensor s = rt(g.div(g.neg().exp().add(1)), gate);
      Tensor du = d.mul(s).to(gate.dtype());
      Tensor dsilu = sig.mul(g.mul(sig.neg().add(1)).add(1));
      Tensor dg = rt(d.mul(up.toFloat()), gate).mul(dsilu).to(gate.dtype());
      return new SwigluGrads(dg, du);
    }

    @Override
    public LossAndGrad crossEntropy(Tensor logits, Tensor labels, double scale) {
      Tensor x = logits.toFloat();
      Tensor lse = Tensor.wrap(torch.logsumexp(x.raw(), new long[] {-1}, true)); // (N, 1)
      Tensor keep = labels.ne(Torch.IGNORE_INDEX); // (N)
      Tensor safe =
          Tensor.wrap(torch.where(keep.raw(), labels.raw(), new org.bytedeco.pytorch.Scalar(0L)));
      Tensor picked = Tensor.wrap(torch.gather(x.raw(), 1, safe.unsqueeze(1).raw())); // (N, 1)
      Tensor keepF = keep.to(DType.F32);
      Tensor rowLoss = lse.sub(picked).view(-1).mul(keepF);
      Tensor onehot = Tensor.wrap(torch.one_hot(safe.raw(), x.size(1))).toFloat();
      Tensor d = x.sub(lse).exp().sub(onehot).mul(keepF.unsqueeze(1)).mul(scale);
      return new LossAndGrad(rowLoss.sum(), d.to(logits.dtype()));
    }
  }
}
