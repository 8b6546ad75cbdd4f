package dev.hanlin.model.quant;

import static dev.hanlin.model.quant.Nf4ReferenceTest.assertBits;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The codecs give the same bits on CUDA as on the CPU (run with the gpu profile). */
@Tag("gpu")
class QuantCudaTest {

  @Test
  void cudaEqualsCpuBitForBit() {
    Assumptions.assumeTrue(Torch.cudaAvailable(), "skipped: no CUDA device");
    Device cuda = Device.cuda(0);
    long[][] shapes = {{64}, {7}, {37, 101}, {300, 257}, {4096, 1024}};
    for (long[] shape : shapes) {
      try (Scope s = Scope.open()) {
        Tensor w = QuantizedWeightTest.randn(shape.length * 31L + shape[0], shape);
        try (Nf4Weight c = (Nf4Weight) QuantizedWeight.quantize(w, 4);
            Nf4Weight g = (Nf4Weight) QuantizedWeight.quantize(w.to(cuda), 4)) {
          assertEquals(cuda, g.codes().device());
          assertArrayEquals(c.codes().toLongArray(), g.codes().toLongArray());
          assertArrayEquals(c.absmaxCodes().toLongArray(), g.absmaxCodes().toLongArray());
          assertBits(c.absmax2().toFloatArray(), g.absmax2().toFloatArray(), "absmax2");
          assertBits(new float[] {c.offset()}, new float[] {g.offset()}, "offset");
          Tensor d = g.dequantize(DType.BF16);
          assertEquals(cuda, d.device());
          assertBits(
              c.dequantize(DType.F32).toFloatArray(),
              g.dequantize(DType.F32).toFloatArray(),
              "values");
          assertBits(c.dequantize(DType.BF16).toFloatArray(), d.toFloatArray(), "bf16 values");
        }
        try (Int8Weight c = (Int8Weight) QuantizedWeight.quantize(w, 8);
            Int8Weight g = (Int8Weight) QuantizedWeight.quantize(w.to(cuda), 8)) {
          assertArrayEquals(c.codes().toLongArray(), g.codes().toLongArray());
          assertBits(
              c.dequantize(DType.F32).toFloatArray(),
              g.dequantize(DType.F32).toFloatArray(),
              "int8 values");
        }
      }
    }
  }
}
