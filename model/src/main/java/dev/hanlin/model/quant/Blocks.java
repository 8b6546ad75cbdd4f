package dev.hanlin.model.quant;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
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

  /**
   * Elements quantized or dequantized per step (16 Mi, 64 MiB of float32): a 4096 x 11008 weight
   * takes three steps, and the temporaries of a step stay near 10 bytes per element of the chunk.
   */
  static final long CHUNK = 1L << 24;

  /** One step over elements {@code [start, start + len)}. */
  interface Step {
    void run(long start, long len);
  }

  /**
   * Runs {@code step} over {@code n} elements {@code chunk} at a time, each step in its own scope
   * (which frees its temporaries); {@code chunk} is a positive multiple of {@code block}, so steps
   * cover whole blocks and whole bytes of packed codes.
   */
  static void forChunks(long n, long chunk, int block, Step step) {
    if (chunk <= 0 || chunk % block != 0) {
      throw new IllegalArgumentException(
          "chunk " + chunk + " is not a positive multiple of " + block);
    }
    for (long start = 0; start < n; start += chunk) {
      try (Scope s = Scope.open()) {
        step.run(start, Math.min(chunk, n - start));
      }
    }
  }

  /** The values of elements {@code [start, start + len)}, flat, in any float dtype. */
  interface Values {
    org.bytedeco.pytorch.Tensor of(long start, long len);
  }

  /**
   * A new tensor of {@code shape} in {@code dtype}, filled chunk by chunk from {@code values} (each
   * chunk rounded once into dtype by the copy); the caller's scope owns it.
   */
  static Tensor assemble(
      long[] shape, long n, long chunk, int block, DType dtype, Device device, Values values) {
    Tensor out = Torch.empty(dtype, device, n);
    forChunks(
        n,
        chunk,
        block,
        (start, len) -> out.narrow(0, start, len).copy_(Tensor.wrap(values.of(start, len))));
    return out.view(shape);
  }

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
