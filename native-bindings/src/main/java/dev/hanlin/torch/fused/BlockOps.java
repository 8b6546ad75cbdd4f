package dev.hanlin.torch.fused;

import dev.hanlin.torch.Tensor;

/**
 * The elementwise parts of a Llama block that the explicit block backward runs, each forward and
 * backward as one call, so that a device can do each in one fused kernel: the reference
 * implementation uses plain libtorch ops (any device; the CPU path and the tests' reference), the
 * CUDA one runs kernels compiled at run time with NVRTC. Rows are flattened: {@code x} is (N, C),
 * contiguous, bf16 or float32; statistics are float32. Numerics follow HF's Llama: RMSNorm
 * normalizes in float32, casts back to the input dtype, then multiplies by the weight.
 */
public interface BlockOps {
  /** {@code y = weight * (x * rstd).to(x.dtype)}, {@code rstd = rsqrt(mean(x²) + eps)} per row. */
  record Normed(Tensor y, Tensor rstd) {}

  /** The residual add fused with the next norm: {@code h = x + delta}, then {@code rmsNorm(h)}. */
  record AddNormed(Tensor h, Tensor y, Tensor rstd) {}

  /** {@code dx} in x's dtype, {@code dweight} float32 (C). */
  record NormGrads(Tensor dx, Tensor dweight) {}

  record SwigluGrads(Tensor dgate, Tensor dup) {}

  /**
   * The summed loss over rows whose label is not -100 (0-dim float32) and, from the same pass,
   * {@code dlogits = scale * (softmax(logits) - onehot(label))} (zero rows where ignored), in the
   * logits' dtype.
   */
  record LossAndGrad(Tensor lossSum, Tensor dlogits) {}

  /** x (N, C), weight (C); rstd float32 (N). */
  Normed rmsNorm(Tensor x, Tensor weight, double eps);

  AddNormed addRmsNorm(Tensor x, Tensor delta, Tensor weight, double eps);

  NormGrads rmsNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor rstd);

  /**
   * HF's rotate-half RoPE: {@code x * cos + rotateHalf(x) * sin} over x (B, heads, T, D), cos/sin
   * (T, D) or (B, 1, T, D) as {@code LlamaModel.positions} gives them.
   */
  Tensor rope(Tensor x, Tensor cos, Tensor sin);

  /** The gradient of {@link #rope} with respect to its input. */
  Tensor ropeBackward(Tensor dy, Tensor cos, Tensor sin);

  /** {@code silu(gate) * up}, both (N, I). */
  Tensor swiglu(Tensor gate, Tensor up);

  SwigluGrads swigluBackward(Tensor dy, Tensor gate, Tensor up);

  /** logits (N, V) any float dtype (computed in float32), labels (N) int64 with -100 ignored. */
  LossAndGrad crossEntropy(Tensor logits, Tensor labels, double scale);
}
