package dev.hanlin.model.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import org.junit.jupiter.api.Test;

/** The public API: dispatch on bits, shapes, storage accounting, errors, lifetime. */
class QuantizedWeightTest {

  static Tensor randn(long seed, long... shape) {
    return Torch.randn(Generator.cpu(seed), DType.F32, Device.CPU, shape);
  }

  @Test
  void bitsPickTheFormatAndOtherWidthsAreRejectedByValue() {
    try (Scope s = Scope.open()) {
      Tensor w = randn(1, 8, 64);
      try (QuantizedWeight q4 = QuantizedWeight.quantize(w, 4);
          QuantizedWeight q8 = QuantizedWeight.quantize(w, 8)) {
        assertInstanceOf(Nf4Weight.class, q4);
        assertInstanceOf(Int8Weight.class, q8);
        assertArrayEquals(new long[] {8, 64}, q4.shape());
        Tensor d = q4.dequantize(DType.BF16);
        assertEquals(DType.BF16, d.dtype());
        assertArrayEquals(new long[] {8, 64}, d.shape());
      }
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> QuantizedWeight.quantize(w, 3));
      assertTrue(e.getMessage().contains("3"), e.getMessage());
    }
  }
}
