package dev.hanlin.model.quant;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A weight in blockwise absmax int8 (issue 17's {@code load_in_bits: 8}): the flattened weight in
 * blocks of 64 (the last one zero-padded, as for NF4), a float32 absmax per block and one int8 per
 * element, {@code q = round_half_even(x * (1.0f/absmax) * 127)} in float32; dequantized value =
 * {@code q * (absmax * (1.0f/127))}. Linear codes rather than bitsandbytes' dynamic 8-bit map: with
 * 64 elements per block the error is already small (at most absmax/254 per element), and the
 * dequantization is one multiply. An all-zero block has codes 0 (its NaN scale is masked).
 * bitsandbytes' LLM.int8 quantizes whole rows the same way ({@code int8_vectorwise_quant}); blocks
 * of 64 keep one outlier from coarsening a whole 4096-wide row.
 */
public final class Int8Weight implements QuantizedWeight {
  /** Elements per block. */
  public static final int BLOCK = 64;

  /** {@code 1.0f / 127}, the float32 the step per block is computed with. */
  static final float INV_127 = 1f / 127f;

  private final long[] shape;
  private final long numel;
  private final Tensor codes; // int8 (n)
  private final Tensor absmax; // float32 (blocks)
  private boolean closed;

  private Int8Weight(long[] shape, long numel, Tensor codes, Tensor absmax) {
    this.shape = shape.clone();
    this.numel = numel;
    this.codes = codes;
    this.absmax = absmax;
  }

  static Int8Weight quantize(Tensor weight) {
    return quantize(weight, Blocks.CHUNK);
  }

  /** As {@link #quantize(Tensor)}, {@code chunk} elements at a time (a multiple of 64). */
  static Int8Weight quantize(Tensor weight, long chunk) {
    Blocks.check(weight);
    try (Grad.Guard g = Grad.noGrad();
        Scope s = Scope.open()) {
      Tensor flat = weight.reshape(-1);
      long n = flat.numel();
      Tensor codes = Torch.empty(DType.I8, flat.device(), n);
      Tensor absmax = Torch.empty(DType.F32, flat.device(), Blocks.count(n, BLOCK));
      Blocks.forChunks(
          n,
          chunk,
          BLOCK,
          (start, len) -> {
            org.bytedeco.pytorch.Tensor blocks =
                Blocks.padded(flat.narrow(0, start, len).raw(), BLOCK); // (nb, 64)
            org.bytedeco.pytorch.Tensor a = Blocks.absmax(blocks); // (nb)
            org.bytedeco.pytorch.Tensor x =
                blocks.mul(Blocks.reciprocal(a).unsqueeze(1)).mul(new Scalar(127.0));
            org.bytedeco.pytorch.Tensor q =
                x.masked_fill(torch.isnan(x), new Scalar(0.0)).round().to(ScalarType.Char);
            codes.narrow(0, start, len).copy_(Tensor.wrap(q.view(-1).narrow(0, 0, len)));
            absmax.narrow(0, start / BLOCK, a.numel()).copy_(Tensor.wrap(a));
          });
      return new Int8Weight(weight.shape(), n, codes.retain(), absmax.retain());
    }
  }

  @Override
  public Tensor dequantize(DType dtype) {
    return dequantize(dtype, Blocks.CHUNK);
  }

  /** As {@link #dequantize(DType)}, {@code chunk} elements at a time into the result. */
  Tensor dequantize(DType dtype, long chunk) {
    try (Grad.Guard g = Grad.noGrad();
        Scope s = Scope.open()) {
      // a multiply, not a division: CUDA divides by a scalar through its reciprocal, the CPU does
      // not, and the two would differ in the last bit
      org.bytedeco.pytorch.Tensor step = absmax.raw().mul(new Scalar((double) INV_127));
      Blocks.Values values =
          (start, len) -> {
            org.bytedeco.pytorch.Tensor q =
                Blocks.padded(codes.raw().narrow(0, start, len), BLOCK); // (nb, 64) float32
            return q.mul(step.narrow(0, start / BLOCK, q.size(0)).unsqueeze(1))
                .view(-1)
                .narrow(0, 0, len);
          };
      return s.keep(Blocks.assemble(shape, numel, chunk, BLOCK, dtype, codes.device(), values));
    }
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** One byte per element plus 4 per 64-element block. */
  @Override
  public long storageBytes() {
    return codes.byteSize() + absmax.byteSize();
  }

  /** The codes, int8 (n), in the weight's flattened order. */
  public Tensor codes() {
    return codes;
  }

  /** The per-block absmaxes, float32, one per 64 elements. */
  public Tensor absmax() {
    return absmax;
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      codes.release();
      absmax.release();
    }
  }

  @Override
  public String toString() {
    return "Int8Weight" + java.util.Arrays.toString(shape) + " on " + codes.device();
  }
}
