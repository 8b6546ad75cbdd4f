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
 * A weight in QLoRA's NF4 with double quantization, computed as bitsandbytes' {@code
 * quantize_4bit(w, blocksize=64, compress_statistics=True, quant_type="nf4")} computes it on CUDA
 * (bitsandbytes/functional.py {@code quantize_4bit}, csrc/kernels.cu {@code kQuantizeBlockwise},
 * {@code dQuantizeNF4}, {@code dQuantize}, {@code kDequantizeBlockwise}, at 95f9af3); equal bit for
 * bit to a numpy port of those kernels, and to bitsandbytes itself where its goldens were made
 * (Nf4GoldenTest):
 *
 * <ol>
 *   <li>flatten, blocks of 64 (the last one zero-padded), absmax per block;
 *   <li>each value times {@code 1.0f/absmax} goes to the NF4 level chosen by the kernel's decision
 *       tree, two codes per byte, the earlier element in the high nibble;
 *   <li>the absmaxes minus their mean ({@link #offset()}) are quantized with the dynamic 8-bit map
 *       in blocks of 256, each with its own float32 absmax.
 * </ol>
 *
 * Dequantized value = {@code NF4[code] * (dynamic[absmaxCode] * absmax2 + offset)}, each step a
 * float32 operation as in the kernels. One difference from bitsandbytes: the offset is the mean
 * computed in float64 and rounded to float32 (deterministic on every device), where bitsandbytes
 * takes torch's float32 {@code mean()}, whose last bit depends on the device's reduction order.
 * bitsandbytes without CUDA (its torch "default" backend) is not the reference: it recomputes the
 * NF4 midpoints in float32, sends a zero block to code 7 and picks dynamic codes by argmin.
 */
public final class Nf4Weight implements QuantizedWeight {
  /** Elements per first-level block (bitsandbytes' default blocksize for 4 bits). */
  public static final int BLOCK = 64;

  /**
   * First-level absmaxes per second-level block ({@code quantize_blockwise(..., blocksize=256)}).
   */
  public static final int BLOCK2 = 256;

  private final long[] shape;
  private final long numel;
  private final Tensor codes; // uint8 (ceil(n/2)): two 4-bit codes per byte, high nibble first
  private final Tensor absmaxCodes; // uint8 (blocks): dynamic-map codes of absmax - offset
  private final Tensor absmax2; // float32 (ceil(blocks/256)): absmax of each 256 block
  private final float offset;
  private boolean closed;

  private Nf4Weight(long[] shape, Tensor codes, Tensor absmaxCodes, Tensor absmax2, float offset) {
    this.shape = shape.clone();
    long n = 1;
    for (long s : shape) n *= s;
    this.numel = n;
    this.codes = codes;
    this.absmaxCodes = absmaxCodes;
    this.absmax2 = absmax2;
    this.offset = offset;
  }

  static Nf4Weight quantize(Tensor weight) {
    return quantize(weight, Blocks.CHUNK);
  }

  /** As {@link #quantize(Tensor)}, {@code chunk} elements at a time (a multiple of 64). */
  static Nf4Weight quantize(Tensor weight, long chunk) {
    Blocks.check(weight);
    try (Grad.Guard g = Grad.noGrad();
        Scope s = Scope.open()) {
      Codebooks.Tables tables = Codebooks.on(weight.device());
      FirstLevel first = FirstLevel.of(weight.raw(), tables, chunk);
      return of(weight.shape(), first.packed(), DoubleQuant.of(first.absmax(), tables));
    }
  }

  /** A weight from its parts (retained here); for the codec and the tests that feed it goldens. */
  static Nf4Weight of(long[] shape, org.bytedeco.pytorch.Tensor packed, DoubleQuant dq) {
    return new Nf4Weight(
        shape,
        Tensor.wrap(packed).retain(),
        Tensor.wrap(dq.codes()).retain(),
        Tensor.wrap(dq.absmax2()).retain(),
        dq.offset());
  }

  /**
   * The first level: packed codes, uint8 (ceil(n/2)), and the float32 absmax of each 64 block
   * (before double quantization), both in the caller's scope.
   */
  record FirstLevel(org.bytedeco.pytorch.Tensor packed, org.bytedeco.pytorch.Tensor absmax) {
    static FirstLevel of(org.bytedeco.pytorch.Tensor weight, Codebooks.Tables tables) {
      return of(weight, tables, Blocks.CHUNK);
    }

    /**
     * Chunk by chunk into preallocated outputs, so the float32 temporaries never exceed a chunk's
     * (blocks are independent; a chunk is whole blocks and whole bytes).
     */
    static FirstLevel of(org.bytedeco.pytorch.Tensor weight, Codebooks.Tables tables, long chunk) {
      Tensor flat = Tensor.wrap(weight).reshape(-1);
      long n = flat.numel();
      Tensor packed = Torch.empty(DType.U8, flat.device(), (n + 1) / 2);
      Tensor absmax = Torch.empty(DType.F32, flat.device(), Blocks.count(n, BLOCK));
      Blocks.forChunks(
          n,
          chunk,
          BLOCK,
          (start, len) -> {
            FirstLevel part = ofChunk(flat.narrow(0, start, len).raw(), tables);
            packed.narrow(0, start / 2, (len + 1) / 2).copy_(Tensor.wrap(part.packed()));
            absmax
                .narrow(0, start / BLOCK, Blocks.count(len, BLOCK))
                .copy_(Tensor.wrap(part.absmax()));
          });
      return new FirstLevel(packed.raw(), absmax.raw());
    }

    private static FirstLevel ofChunk(org.bytedeco.pytorch.Tensor flat, Codebooks.Tables tables) {
      long n = flat.numel();
      org.bytedeco.pytorch.Tensor blocks = Blocks.padded(flat, BLOCK); // (nb, 64)
      org.bytedeco.pytorch.Tensor absmax = Blocks.absmax(blocks); // (nb)
      org.bytedeco.pytorch.Tensor x = blocks.mul(Blocks.reciprocal(absmax).unsqueeze(1));
      org.bytedeco.pytorch.Tensor codes = nf4Codes(x, tables).view(-1, 2); // (nb*32, 2) int32
      org.bytedeco.pytorch.Tensor packed =
          torch
              .bitwise_or(
                  torch.bitwise_left_shift(codes.select(1, 0), new Scalar(4L)), codes.select(1, 1))
              .to(ScalarType.Byte)
              .narrow(0, 0, (n + 1) / 2);
      return new FirstLevel(packed, absmax);
    }
  }

  /**
   * dQuantizeNF4 on every element: the number of thresholds strictly below x ({@code bucketize}
   * with right=false counts boundaries {@code < x}), as int32. NaN (a zero block times infinity)
   * fails every comparison of the tree and lands on code 0; bucketize would put it last, so NaN
   * becomes -infinity first.
   */
  static org.bytedeco.pytorch.Tensor nf4Codes(
      org.bytedeco.pytorch.Tensor x, Codebooks.Tables tables) {
    org.bytedeco.pytorch.Tensor clean =
        x.masked_fill(torch.isnan(x), new Scalar(Double.NEGATIVE_INFINITY));
    return torch.bucketize(clean, tables.nf4Thresholds().raw(), true, false);
  }

  @Override
  public Tensor dequantize(DType dtype) {
    return dequantize(dtype, Blocks.CHUNK);
  }

  /**
   * As {@link #dequantize(DType)}, {@code chunk} elements at a time into the preallocated result:
   * besides the result, the float32 temporaries stay within a chunk's.
   */
  Tensor dequantize(DType dtype, long chunk) {
    try (Grad.Guard g = Grad.noGrad();
        Scope s = Scope.open()) {
      Codebooks.Tables tables = Codebooks.on(codes.device());
      org.bytedeco.pytorch.Tensor absmax =
          DoubleQuant.dequantize(
              absmaxCodes.raw(), absmax2.raw(), offset, Blocks.count(numel, BLOCK), tables);
      Blocks.Values values =
          (start, len) -> {
            long nb = Blocks.count(len, BLOCK);
            org.bytedeco.pytorch.Tensor bytes = codes.raw().narrow(0, start / 2, (len + 1) / 2);
            long pad = nb * BLOCK / 2 - bytes.numel();
            if (pad > 0) bytes = torch.constant_pad_nd(bytes, new long[] {0, pad}, new Scalar(0L));
            // float32 level times float32 absmax, as kDequantizeBlockwise
            org.bytedeco.pytorch.Tensor v =
                tables.nf4Pairs().raw().index_select(0, bytes.to(ScalarType.Int)).view(nb, BLOCK);
            v.mul_(absmax.narrow(0, start / BLOCK, nb).unsqueeze(1));
            return v.view(-1).narrow(0, 0, len);
          };
      return s.keep(Blocks.assemble(shape, numel, chunk, BLOCK, dtype, codes.device(), values));
    }
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  /**
   * {@code ceil(n/2)} code bytes, one byte per 64-block, 4 bytes per 256 blocks, 4 for the offset.
   */
  @Override
  public long storageBytes() {
    return codes.byteSize() + absmaxCodes.byteSize() + absmax2.byteSize() + Float.BYTES;
  }

  /** The packed codes, uint8 {@code ceil(n/2)}: element 2i in the high nibble of byte i. */
  public Tensor codes() {
    return codes;
  }

  /** The double-quantized absmaxes: uint8 codes into bitsandbytes' dynamic map, one per block. */
  public Tensor absmaxCodes() {
    return absmaxCodes;
  }

  /** The second-level absmaxes, float32, one per 256 first-level blocks. */
  public Tensor absmax2() {
    return absmax2;
  }

  /** The mean of the first-level absmaxes, subtracted before their quantization. */
  public float offset() {
    return offset;
  }

  /** The first-level absmaxes as the dequantization uses them (float32, one per 64 block). */
  public Tensor absmax() {
    try (Grad.Guard g = Grad.noGrad();
        Scope s = Scope.open()) {
      Codebooks.Tables tables = Codebooks.on(codes.device());
      return s.keep(
          Tensor.wrap(
              DoubleQuant.dequantize(
                  absmaxCodes.raw(), absmax2.raw(), offset, Blocks.count(numel, BLOCK), tables)));
    }
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      codes.release();
      absmaxCodes.release();
      absmax2.release();
    }
  }

  @Override
  public String toString() {
    return "Nf4Weight" + java.util.Arrays.toString(shape) + " on " + codes.device();
  }
}
