package dev.hanlin.torch.fused;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.List;

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

  /** Rotated queries (B, H, T, D) and keys (B, KV, T, D), as attention takes them (any strides). */
  record RotatedQk(Tensor q, Tensor k) {}

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
   * {@link #rmsNormBackward} with the residual stream's gradient added to dx: {@code residual +
   * dx}, {@code residual} (N, C) in x's dtype. A kernel adds it in the same pass.
   */
  default NormGrads rmsNormBackward(
      Tensor dy, Tensor x, Tensor weight, Tensor rstd, Tensor residual) {
    NormGrads g = rmsNormBackward(dy, x, weight, rstd);
    return new NormGrads(residual.add(g.dx()), g.dweight());
  }

  /**
   * HF's rotate-half RoPE: {@code x * cos + rotateHalf(x) * sin} over x (B, heads, T, D), cos/sin
   * (T, D) or (B, 1, T, D) as {@code LlamaModel.positions} gives them.
   */
  Tensor rope(Tensor x, Tensor cos, Tensor sin);

  /** The gradient of {@link #rope} with respect to its input. */
  Tensor ropeBackward(Tensor dy, Tensor cos, Tensor sin);

  /**
   * {@link #rope} of q (B, H, T, D) and k (B, KV, T, D) with the same positions, each in its own
   * dtype. A kernel does both in one launch and writes them as views of one (B, T, H+KV, D) tensor,
   * the layout attention reads, so no transpose copy follows.
   */
  default RotatedQk ropeQk(Tensor q, Tensor k, Tensor cos, Tensor sin) {
    return new RotatedQk(rope(q, cos, sin).to(q.dtype()), rope(k, cos, sin).to(k.dtype()));
  }

  /**
   * The fused q/k/v projection's output gradient (N, (H+2·KV)·D), N = B·T rows, from attention's dq
   * (B, H, T, D), dk and dv (B, KV, T, D): {@code [ropeBackward(dq) | ropeBackward(dk) | dv]}, each
   * head's D columns in head order, in dq's dtype. A kernel writes the rows in one launch (no
   * transposes, no concatenation).
   */
  default Tensor ropeQkvBackward(Tensor dq, Tensor dk, Tensor dv, Tensor cos, Tensor sin) {
    long n = dq.size(0) * dq.size(2);
    return Torch.cat(
        List.of(
            rows(ropeBackward(dq, cos, sin).to(dq.dtype()), n),
            rows(ropeBackward(dk, cos, sin).to(dk.dtype()), n),
            rows(dv, n)),
        1);
  }

  /** (B, heads, T, D) to (N, heads·D). */
  private static Tensor rows(Tensor heads, long n) {
    return heads.transpose(1, 2).reshape(n, heads.size(1) * heads.size(3));
  }

  /**
   * {@code silu(gate) * up}, both (N, I); they may be column slices of one (N, 2I) tensor (the
   * fused gate/up GEMM's output), which a kernel reads in place. The result is contiguous.
   */
  Tensor swiglu(Tensor gate, Tensor up);

  SwigluGrads swigluBackward(Tensor dy, Tensor gate, Tensor up);

  /**
   * {@link #swigluBackward} as one (N, 2I) tensor {@code [dgate | dup]}, the fused gate/up GEMM's
   * output gradient; a kernel writes both halves in place.
   */
  default Tensor swigluBackwardJoined(Tensor dy, Tensor gate, Tensor up) {
    SwigluGrads g = swigluBackward(dy, gate, up);
    return Torch.cat(List.of(g.dgate(), g.dup()), 1);
  }

  /** logits (N, V) any float dtype (computed in float32), labels (N) int64 with -100 ignored. */
  LossAndGrad crossEntropy(Tensor logits, Tensor labels, double scale);
}
