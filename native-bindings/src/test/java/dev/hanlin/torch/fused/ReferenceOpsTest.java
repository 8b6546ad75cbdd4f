package dev.hanlin.torch.fused;

import static dev.hanlin.torch.fused.Close.check;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Each reference op, forward and backward, against libtorch autograd of the plain expression the
 * model computes (RmsNorm, Rotary, FeedForward, the trainer's loss). float32 within 1e-6 relative;
 * bf16 within 1e-2 (a few bf16 ulps: the references compute their backward in float32, autograd in
 * bf16 op by op).
 */
class ReferenceOpsTest {
  private static final BlockOps OPS = ReferenceOps.reference();

  private static double tol(DType d) {
    return d == DType.F32 ? 1e-6 : 1e-2;
  }

  private static Tensor randn(Generator g, DType d, long... shape) {
    return Torch.randn(g, DType.F32, Device.CPU, shape).to(d);
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "BF16"})
  void rmsNormAndItsFusedAddMatchAutograd(DType d) {
    try (Scope s = Scope.open()) {
      Generator g = Generator.cpu(1);
      Tensor x = randn(g, d, 6, 16), delta = randn(g, d, 6, 16);
      Tensor w = randn(g, d, 16).add(1.0), dy = randn(g, d, 6, 16);
      Tensor xr = x.detach().requiresGrad(true), wr = w.detach().requiresGrad(true);
      Tensor want = wr.mul(Torch.rmsNorm(xr.toFloat(), 1e-5).to(d)); // the model's RmsNorm
      want.backward(dy);
      BlockOps.Normed n = OPS.rmsNorm(x, w, 1e-5);
      check(n.y(), want, tol(d), "y");
      BlockOps.NormGrads gr = OPS.rmsNormBackward(dy, x, w, n.rstd());
      check(gr.dx(), xr.grad(), tol(d), "dx");
      check(gr.dweight(), wr.grad(), tol(d), "dweight");
      BlockOps.AddNormed an = OPS.addRmsNorm(x, delta, w, 1e-5);
      check(an.h(), x.add(delta), 0, "h");
      check(an.y(), OPS.rmsNorm(x.add(delta), w, 1e-5).y(), 0, "add-norm y");
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "BF16"})
  void ropeMatchesAutogradPlainAndPacked(DType d) {
    try (Scope s = Scope.open()) {
      Generator g = Generator.cpu(2);
      for (long[] cs : new long[][] {{5, 8}, {2, 1, 5, 8}}) { // (T, D) and packed (B, 1, T, D)
        Tensor x = randn(g, d, 2, 3, 5, 8), dy = randn(g, d, 2, 3, 5, 8);
        Tensor cos = randn(g, d, cs), sin = randn(g, d, cs);
        Tensor xr = x.detach().requiresGrad(true);
        long half = 4;
        Tensor rot =
            Torch.cat(List.of(xr.narrow(-1, half, half).neg(), xr.narrow(-1, 0, half)), -1);
        Tensor want = xr.mul(cos).add(rot.mul(sin)); // Rotary.apply
        want.backward(dy);
        check(OPS.rope(x, cos, sin), want, tol(d), "rope");
        check(OPS.ropeBackward(dy, cos, sin), xr.grad(), tol(d), "rope backward");
      }
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "BF16"})
  void swigluMatchesAutograd(DType d) {
    try (Scope s = Scope.open()) {
      Generator g = Generator.cpu(3);
      Tensor gate = randn(g, d, 7, 24).mul(3), up = randn(g, d, 7, 24), dy = randn(g, d, 7, 24);
      Tensor gr = gate.detach().requiresGrad(true), ur = up.detach().requiresGrad(true);
      Tensor want = Torch.silu(gr).mul(ur);
      want.backward(dy);
      check(OPS.swiglu(gate, up), want, tol(d), "swiglu");
      BlockOps.SwigluGrads sg = OPS.swigluBackward(dy, gate, up);
      check(sg.dgate(), gr.grad(), tol(d), "dgate");
      check(sg.dup(), ur.grad(), tol(d), "dup");
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "BF16"})
  void crossEntropyMatchesAutogradIgnoringMinus100(DType d) {
    try (Scope s = Scope.open()) {
      Generator g = Generator.cpu(4);
      Tensor logits = randn(g, d, 6, 50).mul(4);
      Tensor labels = Torch.fromLongs(new long[] {3, -100, 49, 0, 17, -100}, 6);
      Tensor lr = logits.detach().requiresGrad(true);
      Tensor want = Torch.crossEntropySum(lr.toFloat(), labels); // the trainer's loss
      want.mul(0.25).backward();
      BlockOps.LossAndGrad lg = OPS.crossEntropy(logits, labels, 0.25);
      check(lg.lossSum(), want, 1e-6, "loss sum"); // float32 in both
      check(lg.dlogits(), lr.grad(), tol(d), "dlogits");
    }
  }
}
