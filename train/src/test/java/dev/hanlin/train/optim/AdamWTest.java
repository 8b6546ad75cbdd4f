package dev.hanlin.train.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.optim.FusedAdamW;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The fused kernel against AdamW as PyTorch documents it (torch.optim.AdamW, decoupled weight
 * decay), computed here in double precision, and a bitwise state round trip. (libtorch's C++
 * torch::optim::AdamW drifts from both once gradients change between steps, so it is no oracle.)
 */
class AdamWTest {
  static final double LR = 1e-2, B1 = 0.9, B2 = 0.95, EPS = 1e-8;

  @Test
  void matchesDocumentedAdamWWithDecayGroups() {
    Problem l = Problem.random(3);
    Tensor w = l.w(), b = l.b(), x = l.x();
    var opt = optimizer(w, b);
    double[] wRef = toDouble(w.toFloatArray()), bRef = toDouble(b.toFloatArray());
    double[][] mW = new double[2][wRef.length], mB = new double[2][bRef.length];
    for (int step = 1; step <= 5; step++) {
      try (Scope s = Scope.open()) {
        opt.zeroGrad();
        squaredOutput(x, w, b).backward();
        adamw(wRef, toDouble(w.grad().toFloatArray()), mW, step, 0.1);
        adamw(bRef, toDouble(b.grad().toFloatArray()), mB, step, 0.0);
        opt.step(LR);
      }
      assertArrayEquals(toFloat(wRef), w.toFloatArray(), 2e-6f, "w after step " + step);
      assertArrayEquals(toFloat(bRef), b.toFloatArray(), 2e-6f, "b after step " + step);
    }
    assertEquals(5.0, opt.state().get("step.w").item());
  }

  @Test
  void savedStateResumesBitwise() {
    Problem l = Problem.random(4);
    Tensor w = l.w(), b = l.b(), x = l.x();
    var opt = optimizer(w, b);
    for (int i = 0; i < 3; i++) {
      try (Scope s = Scope.open()) {
        opt.zeroGrad();
        squaredOutput(x, w, b).backward();
        opt.step(LR);
      }
    }
    Tensor w2 = w.detach().copy().retain().requiresGrad(true);
    Tensor b2 = b.detach().copy().retain().requiresGrad(true);
    var opt2 = optimizer(w2, b2);
    Map<String, Tensor> saved = new LinkedHashMap<>();
    opt.state().forEach((k, v) -> saved.put(k, v.copy().retain()));
    opt2.loadState(saved);
    try (Scope s = Scope.open()) {
      opt.zeroGrad();
      squaredOutput(x, w, b).backward();
      squaredOutput(x, w2, b2).backward();
      assertEquals(opt.gradNorm().item(), opt2.gradNorm().item());
      opt.step(5e-3);
      opt2.step(5e-3);
    }
    assertArrayEquals(w.toFloatArray(), w2.toFloatArray(), 0f);
    assertArrayEquals(b.toFloatArray(), b2.toFloatArray(), 0f);
  }

  /**
   * Clipping inside the kernel (grad_scale) equals torch.nn.utils.clip_grad_norm_ then a plain
   * step, against the documented AdamW in double; a step flagged non-finite (found_inf = 1) changes
   * no parameter and no state; the device norm is the norm.
   */
  @Test
  void clipsInsideTheKernelAndSkipsFlaggedSteps() {
    Problem l = Problem.random(5);
    Tensor w = l.w(), b = l.b(), x = l.x();
    var opt = optimizer(w, b);
    double[] wRef = toDouble(w.toFloatArray()), bRef = toDouble(b.toFloatArray());
    double[][] mW = new double[2][wRef.length], mB = new double[2][bRef.length];
    int taken = 0;
    for (int step = 1; step <= 6; step++) {
      boolean skip = step == 3;
      try (Scope s = Scope.open()) {
        opt.zeroGrad();
        squaredOutput(x, w, b).backward();
        double[] gw = toDouble(w.grad().toFloatArray()), gb = toDouble(b.grad().toFloatArray());
        double sq = 0;
        for (double v : gw) sq += v * v;
        for (double v : gb) sq += v * v;
        double norm = Math.sqrt(sq), max = 0.5;
        Tensor deviceNorm = AdamW.gradNorm(List.of(w, b));
        assertEquals(norm, deviceNorm.item(), norm * 1e-6);
        double coef = Math.min(1, max / (norm + 1e-6));
        if (!skip) {
          taken++;
          for (int i = 0; i < gw.length; i++) gw[i] *= coef;
          for (int i = 0; i < gb.length; i++) gb[i] *= coef;
          adamw(wRef, gw, mW, taken, 0.1);
          adamw(bRef, gb, mB, taken, 0.0);
        }
        Tensor foundInf = Torch.zeros(DType.F32, Device.CPU).fill_(skip ? 1 : 0);
        opt.stepScaled(LR, AdamW.clipScale(deviceNorm, max), foundInf);
      }
      assertArrayEquals(toFloat(wRef), w.toFloatArray(), 2e-6f, "w after step " + step);
      assertArrayEquals(toFloat(bRef), b.toFloatArray(), 2e-6f, "b after step " + step);
    }
    assertEquals(5.0, opt.state().get("step.w").item());
  }

  static AdamW optimizer(Tensor w, Tensor b) {
    return new AdamW(
        List.of(
            new AdamW.Group("decay", Map.of("w", w), 0.1),
            new AdamW.Group("no_decay", Map.of("b", b), 0.0)),
        new FusedAdamW.Betas(B1, B2, EPS));
  }

  /** torch.optim.AdamW's documented update, in double. */
  static void adamw(double[] p, double[] g, double[][] m, int t, double wd) {
    for (int i = 0; i < p.length; i++) {
      p[i] *= 1 - LR * wd;
      m[0][i] = B1 * m[0][i] + (1 - B1) * g[i];
      m[1][i] = B2 * m[1][i] + (1 - B2) * g[i] * g[i];
      double mHat = m[0][i] / (1 - Math.pow(B1, t)), vHat = m[1][i] / (1 - Math.pow(B2, t));
      p[i] -= LR * mHat / (Math.sqrt(vHat) + EPS);
    }
  }

  static double[] toDouble(float[] f) {
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) d[i] = f[i];
    return d;
  }

  static float[] toFloat(double[] d) {
    float[] f = new float[d.length];
    for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
    return f;
  }

  /** A seeded 8x4 weight and bias needing gradients, and a 16x4 input. */
  record Problem(Tensor w, Tensor b, Tensor x) {
    static Problem random(long seed) {
      Generator gen = Generator.cpu(seed);
      return new Problem(
          Torch.randn(gen, DType.F32, Device.CPU, 8, 4).retain().requiresGrad(true),
          Torch.randn(gen, DType.F32, Device.CPU, 8).retain().requiresGrad(true),
          Torch.randn(gen, DType.F32, Device.CPU, 16, 4).retain());
    }
  }

  /** The loss every test differentiates: the sum of the squared outputs of x w^T + b. */
  private static Tensor squaredOutput(Tensor x, Tensor w, Tensor b) {
    return Torch.linear(x, w, b).pow(2).sum();
  }
}
