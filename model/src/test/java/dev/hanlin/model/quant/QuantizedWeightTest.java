package dev.hanlin.model.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
      assertQuantizeRejects(w, 3, "3");
    }
  }

  @Test
  void storageIsHalfAByteAnElementPlusTheStatistics() {
    try (Scope s = Scope.open()) {
      Tensor w = randn(2, 1024, 1000); // 1,024,000 elements: 16,000 blocks, 63 groups of 256
      try (QuantizedWeight q4 = QuantizedWeight.quantize(w, 4);
          QuantizedWeight q8 = QuantizedWeight.quantize(w, 8)) {
        assertEquals(512_000 + 16_000 + 63 * 4 + 4, q4.storageBytes());
        assertEquals(1_024_000 + 16_000 * 4, q8.storageBytes());
        Nf4Weight n = (Nf4Weight) q4;
        assertEquals(DType.U8, n.codes().dtype());
        assertEquals(DType.U8, n.absmaxCodes().dtype());
        assertEquals(DType.F32, n.absmax2().dtype());
        assertEquals(DType.I8, ((Int8Weight) q8).codes().dtype());
      }
      try (QuantizedWeight q4 = QuantizedWeight.quantize(randn(3, 3, 101), 4)) {
        assertEquals(152 + 5 + 4 + 4, q4.storageBytes()); // 303 elements: odd, 5 blocks, 1 group
      }
    }
  }

  @Test
  void theWeightOutlivesTheScopeItWasMadeInAndTheInputIsUntouched() {
    float[] before;
    QuantizedWeight q;
    float[] inside;
    try (Scope s = Scope.open()) {
      Tensor w = randn(4, 5, 70);
      before = w.toFloatArray();
      q = QuantizedWeight.quantize(w, 4);
      inside = q.dequantize(DType.F32).toFloatArray();
      assertArrayEquals(before, w.toFloatArray());
    }
    try (Scope s = Scope.open()) {
      assertArrayEquals(inside, q.dequantize(DType.F32).toFloatArray());
    }
    q.close();
    q.close(); // twice is harmless
    assertTrue(((Nf4Weight) q).codes().isClosed(), "close() freed the codes");
  }

  @Test
  void bf16InputQuantizesItsValues() {
    try (Scope s = Scope.open()) {
      Tensor w = randn(5, 9, 64).to(DType.BF16);
      try (Nf4Weight a = (Nf4Weight) QuantizedWeight.quantize(w, 4);
          Nf4Weight b = (Nf4Weight) QuantizedWeight.quantize(w.to(DType.F32), 4)) {
        assertArrayEquals(a.codes().toLongArray(), b.codes().toLongArray());
        assertArrayEquals(
            a.dequantize(DType.F32).toFloatArray(), b.dequantize(DType.F32).toFloatArray());
      }
    }
  }

  @Test
  void weightsItCannotHoldAreRejectedByName() {
    try (Scope s = Scope.open()) {
      float[] v = new float[128];
      v[77] = Float.NaN;
      Tensor nan = Torch.fromFloats(v, 2, 64);
      for (int bits : new int[] {4, 8}) {
        assertQuantizeRejects(nan, bits, "NaN");
      }
      Tensor ints = Torch.fromLongs(new long[] {1, 2, 3}, 3);
      assertQuantizeRejects(ints, 4, "I64");
    }
  }

  @Test
  void chunkByChunkEqualsAllAtOnce() {
    try (Scope s = Scope.open()) {
      Tensor w = randn(6, 37, 101); // 3737 elements: chunks of 128 and 192 end mid-block, odd
      try (Nf4Weight whole = Nf4Weight.quantize(w)) {
        float[] values = whole.dequantize(DType.F32).toFloatArray();
        for (long chunk : new long[] {128, 192, 4096}) {
          try (Nf4Weight part = Nf4Weight.quantize(w, chunk)) {
            assertArrayEquals(whole.codes().toLongArray(), part.codes().toLongArray());
            assertArrayEquals(whole.absmaxCodes().toLongArray(), part.absmaxCodes().toLongArray());
            assertArrayEquals(whole.absmax2().toFloatArray(), part.absmax2().toFloatArray());
            assertArrayEquals(values, part.dequantize(DType.F32, chunk).toFloatArray());
            assertArrayEquals(
                whole.dequantize(DType.BF16).toFloatArray(),
                part.dequantize(DType.BF16, chunk).toFloatArray());
          }
        }
      }
      try (Int8Weight whole = Int8Weight.quantize(w);
          Int8Weight part = Int8Weight.quantize(w, 192)) {
        assertArrayEquals(whole.codes().toLongArray(), part.codes().toLongArray());
        assertArrayEquals(whole.absmax().toFloatArray(), part.absmax().toFloatArray());
        assertArrayEquals(
            whole.dequantize(DType.F32).toFloatArray(),
            part.dequantize(DType.F32, 128).toFloatArray());
      }
      assertThrows(IllegalArgumentException.class, () -> Nf4Weight.quantize(w, 100));
    }
  }

  @Test
  void aParameterIsQuantizedWithoutRecordingAGraph() {
    // a weight that requires grad (a model parameter) must not leave autograd graphs behind: they
    // would keep each chunk's float32 copy of the weight alive as long as the quantized weight
    try (Scope s = Scope.open()) {
      Tensor w = randn(7, 3, 64).requiresGrad(true);
      try (Nf4Weight q4 = (Nf4Weight) QuantizedWeight.quantize(w, 4);
          Int8Weight q8 = (Int8Weight) QuantizedWeight.quantize(w, 8)) {
        assertFalse(q4.absmax2().requiresGrad(), "absmax2 carries a graph");
        assertFalse(q8.absmax().requiresGrad(), "int8 absmax carries a graph");
        assertFalse(q4.dequantize(DType.F32).requiresGrad());
        assertFalse(q8.dequantize(DType.F32).requiresGrad());
      }
    }
  }

  /** Quantizing {@code w} to {@code bits} fails with a message containing {@code want}. */
  private static void assertQuantizeRejects(Tensor w, int bits, String want) {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> QuantizedWeight.quantize(w, bits));
    assertTrue(e.getMessage().contains(want), e.getMessage());
  }
}
