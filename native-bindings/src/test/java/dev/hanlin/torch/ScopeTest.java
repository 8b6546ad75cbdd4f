package dev.hanlin.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ScopeTest {
  @Test
  void scopeFreesWhatItMadeAndKeepMovesToTheEnclosingScope() {
    Tensor temp, kept, retained;
    try (Scope outer = Scope.open()) {
      try (Scope inner = Scope.open()) {
        temp = Torch.ones(DType.F32, Device.CPU, 4);
        kept = inner.keep(Torch.ones(DType.F32, Device.CPU, 4));
        retained = Torch.ones(DType.F32, Device.CPU, 4).retain();
      }
      assertTrue(temp.isClosed(), "a scope frees its tensors");
      assertFalse(kept.isClosed(), "keep survives the inner scope");
      assertArrayEquals(new float[] {1, 1, 1, 1}, kept.toFloatArray());
    }
    assertTrue(kept.isClosed(), "kept tensors belong to the enclosing scope");
    assertFalse(retained.isClosed(), "retained tensors outlive every scope");
    assertEquals(4.0, retained.sum().item());
    retained.release();
  }

  @Test
  void dtypesMapByValueNotIdentity() {
    try (Scope s = Scope.open()) {
      for (DType d :
          new DType[] {DType.F32, DType.BF16, DType.F16, DType.I64, DType.U16, DType.U8}) {
        assertEquals(d, Torch.zeros(d, Device.CPU, 2).dtype());
      }
      assertEquals(Device.CPU, Torch.zeros(DType.F32, Device.CPU, 1).device());
      assertEquals(0, Torch.zeros(DType.F32, Device.CPU, 0).toFloatArray().length);
    }
  }
}
