package dev.hanlin.model.quant;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A weight in QLoRA's NF4 with double quantization, bit for bit bitsandbytes' {@code
 * quantize_4bit(w, blocksize=64, compress_statistics=True, quant_type="nf4")} on CUDA
 * (bitsandbytes/functional.py {@code quantize_4bit}, csrc/kernels.cu {@code kQuantizeBlockwise},
 * {@code dQuantizeNF4}, {@code dQuantize}, {@code kDequantizeBlockwise}):
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
    Blocks.check(weight);
    long n = weight.numel();
    try (Scope s = Scope.open()) {
      Codebooks.Tables tables = Codebooks.on(weight.device());
      org.bytedeco.pytorch.Tensor blocks = Blocks.padded(weight.raw(), BLOCK); // (nb, 64)
      org.bytedeco.pytorch.Tensor absmax = Blocks.absmax(blocks); // (nb)
      org.bytedeco.pytorch.Tensor x = blocks.mul(Blocks.reciprocal(absmax).unsqueeze(1));
      org.bytedeco.pytorch.Tensor codes = nf4Codes(x, tables).view(-1, 2); // (nb*32, 2) int32
      org.bytedeco.pytorch.Tensor packed =
          torch
              .bitwise_or(
                  torch.bitwise_left_shift(codes.select(1, 0), new Scalar(4L)), codes.select(1, 1))
              .to(ScalarType.Byte)
              .narrow(0, 0, (n + 1) / 2)
              .contiguous();
      DoubleQuant dq = DoubleQuant.of(absmax, tables);
      return new Nf4Weight(
          weight.shape(),
          Tensor.wrap(packed).retain(),
          Tensor.wrap(dq.codes()).retain(),
          Tensor.wrap(dq.absmax2()).retain(),
          dq.offset());
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
    long nb = Blocks.count(numel, BLOCK);
    try (Scope s = Scope.open()) {
      Codebooks.Tables tables = Codebooks.on(codes.device());
      org.bytedeco.pytorch.Tensor absmax =
          DoubleQuant.dequantize(absmaxCodes.raw(), absmax2.raw(), offset, nb, tables); // (nb)
      org.bytedeco.pytorch.Tensor bytes = codes.raw();
      long pad = nb * BLOCK / 2 - bytes.numel();
      if (pad > 0) bytes = torch.constant_pad_nd(bytes, new long[] {0, pad}, new Scalar(0L));
      org.bytedeco.pytorch.Tensor levels =
          tables.nf4Pairs().raw().index_select(0, bytes.to(ScalarType.Int)).view(nb, BLOCK);
      org.bytedeco.pytorch.Tensor out =
          levels.mul(absmax.unsqueeze(1)).view(-1).narrow(0, 0, numel).reshape(shape);
      return s.keep(Tensor.wrap(out).to(dtype).contiguous());
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
    try (Scope s = Scope.open()) {
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
