package dev.hanlin.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * {@link Torch#nativeDropout} returns libtorch's dropped tensor and its bool mask, consistent with
 * each other, and {@link Torch#nativeDropoutBackward} is autograd's backward of that op: {@code dy
 * · m / (1-p)}, bitwise.
 */
class NativeDropoutTest {
  @Test
  void outputMaskAndBackwardAgree() {
    for (DType dt : new DType[] {DType.F32, DType.BF16})
      try (Scope s = Scope.open()) {
        double p = 0.1;
        Tensor x = Torch.randn(Generator.cpu(1), DType.F32, Device.CPU, 33, 20).to(dt);
        Tensor dy = Torch.randn(Generator.cpu(2), DType.F32, Device.CPU, 33, 20).to(dt);
        Torch.manualSeed(3);
        Tensor[] r = Torch.nativeDropout(x, p);
        assertEquals(DType.BOOL, r[1].dtype());
        assertEquals(dt, r[0].dtype());
        float[] out = r[0].toFloatArray(), m = r[1].toFloat().toFloatArray();
        float[] xs = x.toFloatArray();
        int kept = 0;
        for (int i = 0; i < out.length; i++) {
          if (m[i] == 0) assertEquals(0f, Math.abs(out[i]), "dropped " + i);
          else assertEquals(xs[i] / (1 - p), out[i], 1e-2 * Math.abs(xs[i]) + 1e-6, "kept " + i);
          kept += (int) m[i];
        }
        assertTrue(kept > 0 && kept < out.length, "some kept, not all: " + kept);
        Tensor back = Torch.nativeDropoutBackward(dy, r[1], 1 / (1 - p));
        assertArrayEquals(
            dy.mul(r[1]).mul(1 / (1 - p)).toFloatArray(), back.toFloatArray(), dt + " backward");
      }
  }
}
