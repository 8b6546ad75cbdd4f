/**
 * Frozen base weights in 4 or 8 bits, for LoRA on a quantized base ({@code lora.load_in_bits}).
 * {@link dev.hanlin.model.quant.QuantizedWeight#quantize} gives an {@link
 * dev.hanlin.model.quant.Nf4Weight} (bitsandbytes' NF4 with double quantization, bit for bit as its
 * CUDA kernels) or an {@link dev.hanlin.model.quant.Int8Weight} (blockwise absmax int8); a model's
 * {@code Linear} holds one as its weight and dequantizes it for each product. Everything here runs
 * on libtorch ops, on the CPU or CUDA, with the same bits on both.
 */
package dev.hanlin.model.quant;
