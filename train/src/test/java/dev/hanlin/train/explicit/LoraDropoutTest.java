package dev.hanlin.train.explicit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import org.junit.jupiter.api.Test;

/**
 * {@link LoraDropout} against libtorch's own dropout, which the model's LoRA layers run under
 * autograd: from the same seed the dropped input is bitwise {@code Torch.dropout(x, p, true)}, the
 * generator ends where that op leaves it (the next draw is the same), and the mask's backward is
 * autograd's backward of that op, bitwise. Float32 and bf16, p 0.05, 0.1 and 0.5. (CUDA's way,
 * libtorch's native_dropout itself, is LoraDropoutGpuTest's.)
 */
class LoraDropoutTest {
  private static final long N = 37, K = 24; // not multiples of anything

  @Test
  void drawsWhatTorchDropoutDrawsAndBackpropagatesAsAutograd() {
    for (DType dt : new DType[] {DType.F32, DType.BF16})
      for (double p : new double[] {0.05, 0.1, 0.5}) {
        String what = dt + " p=" + p;
        try (Scope s = Scope.open()) {
          Tensor x = Torch.randn(Generator.cpu(1), DType.F32, Device.CPU, N, K).to(dt);
          Tensor dy = Torch.randn(Generator.cpu(2), DType.F32, Device.CPU, N, K).to(dt);
          // autograd's forward and backward of the op, from seed 5
          Torch.manualSeed(5);
          Tensor leaf = x.detach().requiresGrad(true);
          Tensor want = Torch.dropout(leaf, p, true);
          want.backward(dy);
          float[] wantNext = next();
          Torch.manualSeed(5);
          LoraDropout.Drawn d = LoraDropout.draw(x, p);
          assertArrayEquals(next(), wantNext, what + ": the generator ends where dropout's does");
          assertArrayEquals(
              want.toFloatArray(), d.dropped().toFloatArray(), what + ": bitwise dropout(x)");
          assertEquals(dt, d.dropped().dtype(), what);
          float[] got = d.mask().backward(dy).toFloatArray(), ref = leaf.grad().toFloatArray();
          assertArrayEquals(ref, got, what + ": bitwise autograd's backward");
          int dropped = 0;
          for (float v : want.toFloatArray()) if (v == 0) dropped++;
          assertTrue(dropped > 0 && dropped < N * K, what + ": some dropped, not all");
        }
      }
  }

  /** A non-contiguous input draws as its contiguous copy does, mask and values agreeing. */
  @Test
  void aTransposedInputDrawsAsItsContiguousCopy() {
    try (Scope s = Scope.open()) {
      Tensor x = Torch.randn(Generator.cpu(1), DType.F32, Device.CPU, K, N).transpose(0, 1);
      Torch.manualSeed(9);
      Tensor want = Torch.dropout(x.contiguous(), 0.2, true);
      Torch.manualSeed(9);
      LoraDropout.Drawn d = LoraDropout.draw(x, 0.2);
      assertArrayEquals(want.toFloatArray(), d.dropped().toFloatArray());
      float[] masked = d.mask().backward(x.contiguous()).toFloatArray();
      float[] w = want.toFloatArray();
      for (int i = 0; i < w.length; i++)
        assertEquals(w[i], masked[i], 1e-6 * Math.abs(w[i]), "the mask is the draw's, " + i);
    }
  }

  /**
   * {@code addBackward} adds the mask's backward to a gradient in one pass: within one rounding of
   * adding {@code backward(dy)} (float32 and bf16), for the CPU's scaled noise and for CUDA's kind
   * of mask (bool, with 1/(1-p)), here from libtorch's native_dropout on the CPU.
   */
  @Test
  void addBackwardAddsTheMasksBackwardInOnePass() {
    double p = 0.1;
    for (DType dt : new DType[] {DType.F32, DType.BF16})
      try (Scope s = Scope.open()) {
        Tensor x = Torch.randn(Generator.cpu(1), DType.F32, Device.CPU, N, K).to(dt);
        Tensor dy = Torch.randn(Generator.cpu(2), DType.F32, Device.CPU, N, K).to(dt);
        Tensor dx = Torch.randn(Generator.cpu(3), DType.F32, Device.CPU, N, K).to(dt);
        Tensor[] nd = Torch.nativeDropout(x, p);
        LoraDropout.Mask[] masks = {
          LoraDropout.draw(x, p).mask(), new LoraDropout.Mask(nd[1], 1 / (1 - p))
        };
        double ulp = dt == DType.BF16 ? 1.0 / 128 : 1.0 / (1 << 23);
        for (LoraDropout.Mask m : masks) {
          String what = dt + (m.scale() == 1 ? " noise" : " bool mask");
          float[] g = m.backward(dy).toFloatArray(), d = dx.toFloatArray();
          float[] want = dx.add(m.backward(dy)).toFloatArray();
          Tensor acc = dx.copy();
          m.addBackward(acc, dy);
          float[] got = acc.toFloatArray();
          int kept = 0;
          for (int i = 0; i < want.length; i++) {
            double tol = 2 * ulp * (Math.abs(d[i]) + Math.abs(g[i]));
            assertEquals(want[i], got[i], tol, what + " " + i);
            if (g[i] != 0) kept++;
          }
          assertTrue(kept > 0 && kept < N * K, what + ": the mask applies");
        }
      }
  }

  /** What the default generator draws next. */
  static float[] next() {
    try (Scope s = Scope.open()) {
      return Torch.dropout(Torch.ones(DType.F32, Device.CPU, 64), 0.5, true).toFloatArray();
    }
  }
}
