package dev.hanlin.train.metrics;

import dev.hanlin.model.LlamaConfig;
import java.util.Locale;

/**
 * Model FLOPs utilization: the FLOPs the model needs per second at the measured throughput, over
 * the devices' peak.
 *
 * <p>Training FLOPs per token are {@code 6·N + 6·L·T·d}: {@code 6·N} for the matmuls of forward
 * (2·N) and backward (4·N) with {@code N} the parameters that take part in matmuls (all but the
 * input embedding table, which is a lookup; a tied table counts once, as lm_head), and {@code
 * 6·L·T·d} for attention scores and the weighted sum over {@code T} positions in {@code L} layers
 * of width {@code d = heads·head_dim}, counting only the causal half of PaLM's {@code 12·L·T·d}
 * (the masked half is not useful work). Recomputation (activation checkpointing) is not counted:
 * this is MFU, not hardware FLOPs utilization. The result is therefore lower than nanoGPT's
 * estimate, which counts the full attention matrix.
 */
public final class Mfu {
  /** H100 SXM dense bf16 peak, FLOP/s. */
  public static final double H100_SXM_BF16 = 989e12;

  /** H100 PCIe dense bf16 peak, FLOP/s. */
  public static final double H100_PCIE_BF16 = 756e12;

  /** H200 dense bf16 peak (same tensor cores as H100 SXM), FLOP/s. */
  public static final double H200_BF16 = 989e12;

  /** A100 dense bf16 peak, FLOP/s. */
  public static final double A100_BF16 = 312e12;

  /** L40S dense bf16 peak, FLOP/s. */
  public static final double L40S_BF16 = 362e12;

  /** GeForce RTX 4090 dense bf16 peak (fp32 accumulate), FLOP/s. */
  public static final double RTX_4090_BF16 = 165e12;

  private Mfu() {}

  /**
   * Training FLOPs per token, {@code 6·N + 6·L·T·d}.
   *
   * @param matmulParams N: parameters used in matmuls (exclude an untied input embedding)
   * @param layers L
   * @param seqLen T, the training sequence length
   * @param attentionWidth d = heads·head_dim (the hidden size for Llama)
   */
  public static double flopsPerToken(
      long matmulParams, int layers, int seqLen, int attentionWidth) {
    return 6.0 * matmulParams + 6.0 * layers * (double) seqLen * attentionWidth;
  }

  /** {@link #flopsPerToken(long, int, int, int)} for a Llama config at sequence length T. */
  public static double flopsPerToken(LlamaConfig c, int seqLen) {
    long inputEmbedding = c.tieWordEmbeddings() ? 0 : (long) c.vocabSize() * c.hiddenSize();
    return flopsPerToken(
        c.parameterCount() - inputEmbedding,
        c.numHiddenLayers(),
        seqLen,
        c.numAttentionHeads() * c.headDim());
  }

  /**
   * The dense bf16 peak of one device, from its name as CUDA reports it ({@code "NVIDIA H100 80GB
   * HBM3"}), or NaN for a CPU or an unknown device (MFU is then shown as "-").
   */
  public static double peakFlopsPerSecond(String deviceName) {
    if (deviceName == null) return Double.NaN;
    String n = deviceName.toUpperCase(Locale.ROOT);
    if (n.contains("H200")) return H200_BF16;
    if (n.contains("H100")) return n.contains("PCIE") ? H100_PCIE_BF16 : H100_SXM_BF16;
    if (n.contains("A100")) return A100_BF16;
    if (n.contains("L40S")) return L40S_BF16;
    if (n.contains("RTX 4090")) return RTX_4090_BF16;
    return Double.NaN;
  }

  /**
   * MFU in [0, 1] (above 1 means the FLOP count or the peak is wrong), NaN if the peak is unknown.
   */
  public static double mfu(
      double tokensPerSecond, double flopsPerToken, double peakFlopsPerSecond) {
    if (!(peakFlopsPerSecond > 0) || !Double.isFinite(tokensPerSecond)) return Double.NaN;
    return tokensPerSecond * flopsPerToken / peakFlopsPerSecond;
  }
}
