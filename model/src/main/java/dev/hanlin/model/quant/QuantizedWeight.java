package dev.hanlin.model.quant;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Tensor;

/**
 * A frozen base weight held in 4 or 8 bits (issue 17, QLoRA): {@link Nf4Weight} is bitsandbytes'
 * {@code quantize_4bit(w, blocksize=64, compress_statistics=True, quant_type="nf4")}, {@link
 * Int8Weight} is blockwise absmax int8. The held tensors outlive every {@link
 * dev.hanlin.torch.Scope}; {@link #close()} frees them. Nothing here records autograd: a weight
 * that requires grad is read as a constant, and dequantized tensors do not require grad.
 */
public sealed interface QuantizedWeight extends AutoCloseable permits Nf4Weight, Int8Weight {

  /**
   * Quantizes {@code weight} (any float dtype, any shape, CPU or CUDA) into a new weight on the
   * same device; the input is left as it is.
   *
   * @param bits 4 (NF4 with double quantization) or 8 (blockwise int8)
   * @throws IllegalArgumentException for other bit widths, or a weight with NaN or infinite values
   */
  static QuantizedWeight quantize(Tensor weight, int bits) {
    return switch (bits) {
      case 4 -> Nf4Weight.quantize(weight);
      case 8 -> Int8Weight.quantize(weight);
      default ->
          throw new IllegalArgumentException(
              "load_in_bits must be 4 or 8, got " + bits + " (quantizing weight " + weight + ")");
    };
  }

  /**
   * A new tensor of the original shape in {@code dtype} on the weight's device; the caller owns it
   * (it belongs to the caller's open scope). Values are computed in float32 and rounded once.
   */
  Tensor dequantize(DType dtype);

  /** The original weight's shape. */
  long[] shape();

  /** Bytes held on the device: codes plus statistics (the shared code books not counted). */
  long storageBytes();

  /** Frees the held tensors; the weight cannot be used afterwards. */
  @Override
  void close();
}
