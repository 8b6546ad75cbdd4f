package dev.hanlin.model.quant;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * QLoRA's double quantization of the first-level absmaxes, as bitsandbytes' {@code
 * quantize_4bit(..., compress_statistics=True)} does it (functional.py): {@code offset =
 * absmax.mean()}, then {@code quantize_blockwise(absmax - offset, blocksize=256)} with the dynamic
 * map, whose CUDA kernel picks codes with {@code dQuantize<0>} (kernels.cu). Raw handles; the
 * caller's scope owns every result.
 *
 * @param codes uint8 (blocks): dynamic-map codes
 * @param absmax2 float32 (ceil(blocks/256)): absmax of each 256 block of centred absmaxes
 * @param offset the mean of the absmaxes
 */
record DoubleQuant(
    org.bytedeco.pytorch.Tensor codes, org.bytedeco.pytorch.Tensor absmax2, float offset) {

  static DoubleQuant of(org.bytedeco.pytorch.Tensor absmax, Codebooks.Tables tables) {
    // float64 sum, rounded once: the same value on every device (see Nf4Weight on bitsandbytes'
    // float32 mean)
    double sum = absmax.to(ScalarType.Double).sum().item().toDouble();
    return of(absmax, tables, (float) (sum / absmax.numel()));
  }

  /** The second stage with a given offset (tests feed bitsandbytes' own float32 mean). */
  static DoubleQuant of(org.bytedeco.pytorch.Tensor absmax, Codebooks.Tables tables, float offset) {
    long nb = absmax.numel();
    org.bytedeco.pytorch.Tensor centred = absmax.sub(new Scalar((double) offset));
    org.bytedeco.pytorch.Tensor blocks = Blocks.padded(centred, Nf4Weight.BLOCK2); // (nb2, 256)
    org.bytedeco.pytorch.Tensor absmax2 = Blocks.absmax(blocks);
    org.bytedeco.pytorch.Tensor y = blocks.mul(Blocks.reciprocal(absmax2).unsqueeze(1)).reshape(-1);
    org.bytedeco.pytorch.Tensor codes =
        dynamicCodes(y, tables.dynamic().raw(), Tensor.wrap(y).device())
            .narrow(0, 0, nb)
            .to(ScalarType.Byte)
            .contiguous();
    return new DoubleQuant(codes, absmax2.contiguous(), offset);
  }

  /**
   * kernels.cu {@code dQuantize<0>} on every element at once: seven halving steps of its binary
   * search from pivot 127 (up when {@code x > code[pivot]}), then the nearest of the pivot and the
   * last neighbours passed, with the kernel's own tie rule (a value on a midpoint keeps the pivot)
   * and its edge cases (upper_pivot 255 and lower_pivot 0 read the map's ends). A NaN fails every
   * comparison and ends on code 0, as on the GPU.
   */
  static org.bytedeco.pytorch.Tensor dynamicCodes(
      org.bytedeco.pytorch.Tensor x, org.bytedeco.pytorch.Tensor code, Device device) {
    long m = x.numel();
    org.bytedeco.pytorch.Tensor pivot = Torch.full(127, DType.I64, device, m).raw();
    org.bytedeco.pytorch.Tensor upperPivot = Torch.full(255, DType.I64, device, m).raw();
    org.bytedeco.pytorch.Tensor lowerPivot = Torch.full(0, DType.I64, device, m).raw();
    org.bytedeco.pytorch.Tensor lower = Torch.full(-1, DType.F32, device, m).raw();
    org.bytedeco.pytorch.Tensor upper = Torch.full(1, DType.F32, device, m).raw();
    org.bytedeco.pytorch.Tensor val = code.index_select(0, pivot);
    for (long i = 64; i > 0; i >>= 1) {
      org.bytedeco.pytorch.Tensor up = x.gt(val);
      lowerPivot = torch.where(up, pivot, lowerPivot);
      lower = torch.where(up, val, lower);
      upperPivot = torch.where(up, upperPivot, pivot);
      upper = torch.where(up, upper, val);
      pivot = pivot.add(torch.where(up, new Scalar(i), new Scalar(-i)));
      val = code.index_select(0, pivot);
    }
    upper =
        torch.where(
            upperPivot.eq(new Scalar(255L)), new Scalar((double) Codebooks.DYNAMIC[255]), upper);
    lower =
        torch.where(
            lowerPivot.eq(new Scalar(0L)), new Scalar((double) Codebooks.DYNAMIC[0]), lower);
    org.bytedeco.pytorch.Tensor above = x.gt(val);
    Scalar half = new Scalar(0.5);
    org.bytedeco.pytorch.Tensor midUp = upper.add(val).mul(half);
    org.bytedeco.pytorch.Tensor midLow = lower.add(val).mul(half);
    return torch.where(
        above,
        torch.where(x.gt(midUp), upperPivot, pivot),
        torch.where(x.lt(midLow), lowerPivot, pivot));
  }

  /**
   * The first-level absmaxes back: {@code code[q] * absmax2} per 256 block (kernels.cu
   * kDequantizeBlockwise, General8bit), then {@code + offset} (functional.py dequantize_4bit), each
   * a float32 operation.
   */
  static org.bytedeco.pytorch.Tensor dequantize(
      org.bytedeco.pytorch.Tensor codes,
      org.bytedeco.pytorch.Tensor absmax2,
      float offset,
      long nb,
      Codebooks.Tables tables) {
    org.bytedeco.pytorch.Tensor vals =
        tables.dynamic().raw().index_select(0, codes.to(ScalarType.Int));
    long pad = absmax2.numel() * Nf4Weight.BLOCK2 - nb;
    if (pad > 0) vals = torch.constant_pad_nd(vals, new long[] {0, pad}, new Scalar(0.0));
    return vals.view(-1, Nf4Weight.BLOCK2)
        .mul(absmax2.unsqueeze(1))
        .reshape(-1)
        .narrow(0, 0, nb)
        .add(new Scalar((double) offset));
  }
}
