package dev.hanlin.model.quant;

import dev.hanlin.torch.Tensor;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Blockwise absmax helpers shared by the codecs. They work on raw libtorch handles because the
 * facade has no amax, bucketize, where or bit operations; every call runs inside the caller's
 * scope.
 */
final class Blocks {
  private Blocks() {}

  /** Number of blocks of {@code size} covering {@code n} elements (the last one padded). */
  static long count(long n, long size) {
    return (n + size - 1) / size;
  }

  /**
   * The weight flattened to float32 and zero-padded to whole blocks, as (blocks, size).
   * bitsandbytes loads the tail of the last block as 0 (kernels.cu kQuantizeBlockwise: {@code
   * Load(..., (T) 0.0f)}), so the padding changes neither that block's absmax nor the real
   * elements' codes.
   */
  static org.bytedeco.pytorch.Tensor padded(org.bytedeco.pytorch.Tensor flat, long size) {
    long n = flat.numel();
    long pad = count(n, size) * size - n;
    org.bytedeco.pytorch.Tensor f = flat.to(ScalarType.Float).reshape(-1);
    if (pad > 0) f = torch.constant_pad_nd(f, new long[] {0, pad}, new Scalar(0.0));
    return f.view(-1, size);
  }

  /** Per-row max of |x| over (blocks, size), float32 (blocks). */
  static org.bytedeco.pytorch.Tensor absmax(org.bytedeco.pytorch.Tensor blocks) {
    return blocks.abs().amax(new long[] {1}, false);
  }

  /**
   * {@code 1.0f / absmax}, as the kernels multiply by it instead of dividing (kernels.cu: {@code
   * smem_absmax_value[0] = 1.0f / local_abs_max}, then {@code vals[j] * local_abs_max}); a zero
   * absmax gives infinity and so NaN for that block's (zero) elements, as on the GPU.
   */
  static org.bytedeco.pytorch.Tensor reciprocal(org.bytedeco.pytorch.Tensor absmax) {
    return absmax.reciprocal();
  }

  /** Rejects weights a quantized base cannot hold, naming the weight. */
  static void check(Tensor weight) {
    if (!weight.dtype().isFloatingPoint()) {
      throw new IllegalArgumentException(
          "cannot quantize a " + weight.dtype() + " tensor " + weight);
    }
    if (weight.numel() == 0) throw new IllegalArgumentException("cannot quantize empty " + weight);
    if (!torch.isfinite(weight.raw()).all().item_bool()) {
      throw new IllegalArgumentException(
          "cannot quantize " + weight + ": it holds NaN or infinity");
    }
  }
}
