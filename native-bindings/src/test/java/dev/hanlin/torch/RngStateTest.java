package dev.hanlin.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * A device generator's saved state replays the same draws (the recompute and resume rely on it).
 */
class RngStateTest {
  static float[] draw() {
    try (Scope s = Scope.open()) {
      return Torch.dropout(Torch.ones(DType.F32, Device.CPU, 32), 0.5, true).toFloatArray();
    }
  }

  @Test
  void savedStateReplaysTheSameDraws() {
    Torch.manualSeed(3);
    Tensor st = Torch.rngState(Device.CPU).retain();
    float[] first = draw(), second = draw();
    assertFalse(Arrays.equals(first, second), "consecutive draws differ");
    Torch.setRngState(Device.CPU, st);
    assertArrayEquals(first, draw());
    st.release();
  }
}
