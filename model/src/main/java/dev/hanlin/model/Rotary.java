package dev.hanlin.model;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.List;

/**
 * Rotary position embeddings in HF's rotate-half convention: the head dimension is split in two
 * halves that rotate together, {@code x·cos + rotate_half(x)·sin}. Frequencies follow the config's
 * {@link RopeScaling}. Shapes: T = tokens, D = head dim.
 */
final class Rotary {
  private final LlamaConfig config;
  private final float[] baseInvFreq;

  Rotary(LlamaConfig config) {
    this.config = config;
    this.baseInvFreq = invFreq(config, config.maxPositionEmbeddings());
  }

  /** Frequencies for a sequence that reaches {@code seqLen} positions. */
  static float[] invFreq(LlamaConfig c, long seqLen) {
    int dim = c.headDim();
    double base = c.ropeTheta();
    if (c.ropeScaling() instanceof RopeScaling.Dynamic d && seqLen > c.maxPositionEmbeddings()) {
      double f = d.factor();
      base *= Math.pow(f * seqLen / c.maxPositionEmbeddings() - (f - 1), dim / (dim - 2.0));
    }
    float[] inv = new float[dim / 2];
    for (int i = 0; i < inv.length; i++) {
      // HF: 1 / base ** (arange(0, dim, 2).float() / dim), in float32
      float exponent = (float) (2 * i) / dim;
      inv[i] = (float) (1.0 / (float) Math.pow(base, exponent));
    }
    switch (c.ropeScaling()) {
      case RopeScaling.Linear l -> {
        for (int i = 0; i < inv.length; i++) inv[i] = (float) (inv[i] / l.factor());
      }
      case RopeScaling.Llama3 l -> llama3(inv, l);
      case RopeScaling.None n -> {}
      case RopeScaling.Dynamic d -> {}
    }
    return inv;
  }

  /** Llama 3.1: long wavelengths divided by factor, short kept, the middle band interpolated. */
  private static void llama3(float[] inv, RopeScaling.Llama3 l) {
    double lowWavelen = l.originalMaxPositions() / l.lowFreqFactor();
    double highWavelen = l.originalMaxPositions() / l.highFreqFactor();
    for (int i = 0; i < inv.length; i++) {
      double wavelen = 2 * Math.PI / inv[i];
      double f = wavelen > lowWavelen ? inv[i] / l.factor() : inv[i];
      if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
        double smooth =
            (l.originalMaxPositions() / wavelen - l.lowFreqFactor())
                / (l.highFreqFactor() - l.lowFreqFactor());
        f = (1 - smooth) * f / l.factor() + smooth * f;
      }
      inv[i] = (float) f;
    }
  }

  /** {@code cos} and {@code sin}, each (T, D), for positions {@code [start, start + length)}. */
  Tensor[] cosSin(long start, long length, DType dtype, Device device) {
    float[] inv =
        config.ropeScaling() instanceof RopeScaling.Dynamic
            ? invFreq(config, start + length)
            : baseInvFreq;
    Tensor pos = Torch.arange(start, start + length, 1, DType.F32, device); // (T)
    Tensor freqs = Torch.outer(pos, Torch.fromFloats(inv, inv.length).to(device)); // (T, D/2)
    Tensor emb = Torch.cat(List.of(freqs, freqs), -1); // (T, D)
    return new Tensor[] {emb.cos().to(dtype), emb.sin().to(dtype)};
  }

  /** Rotates {@code x} (B, H, T, D) by the angles in {@code cos}/{@code sin} (T, D). */
  static Tensor apply(Tensor x, Tensor cos, Tensor sin) {
    long half = x.size(-1) / 2;
    Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
    Tensor rotated = Torch.cat(List.of(x2.neg(), x1), -1);
    return x.mul(cos).add(rotated.mul(sin));
  }
}
