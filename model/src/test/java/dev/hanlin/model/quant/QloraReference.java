package dev.hanlin.model.quant;

/**
 * QLoRA's NF4 with double quantization, and blockwise int8, in plain scalar Java over float arrays:
 * a second implementation written from the paper (arXiv 2305.14314, §3) and bitsandbytes' CUDA code
 * (kernels.cu kQuantizeBlockwise, dQuantizeNF4, dQuantize, kDequantizeBlockwise; functional.py
 * quantize_4bit, dequantize_4bit), sharing nothing with the tensor code it checks: its own
 * constants, its own loops, the decision tree transcribed as the kernel writes it.
 */
final class QloraReference {
  private QloraReference() {}

  /** Everything the NF4 format holds, plus the values it gives back. */
  record Nf4(
      byte[] codes,
      float[] absmax,
      byte[] absmaxCodes,
      float[] absmax2,
      float offset,
      float[] dequantizedAbsmax,
      float[] dequantized) {}

  /** kernels.cu nf4_dequantization_lut. */
  static final float[] LEVELS = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f
  };

  /** kernels.cu dQuantizeNF4, transcribed branch by branch. */
  static int nf4Tree(float x) {
    if (x > 0.03979014977812767f) {
      if (x > 0.3893125355243683f) {
        if (x > 0.6427869200706482f) return x > 0.8614784181118011f ? 0b1111 : 0b1110;
        return x > 0.5016634166240692f ? 0b1101 : 0b1100;
      }
      if (x > 0.2035212516784668f) return x > 0.2920137718319893f ? 0b1011 : 0b1010;
      return x > 0.1202552504837513f ? 0b1001 : 0b1000;
    }
    if (x > -0.33967943489551544f) {
      if (x > -0.13791173323988914f) return x > -0.045525018125772476f ? 0b0111 : 0b0110;
      return x > -0.23460740596055984f ? 0b0101 : 0b0100;
    }
    if (x > -0.6106329262256622f) return x > -0.4599952697753906f ? 0b0011 : 0b0010;
    return x > -0.8480964004993439f ? 0b0001 : 0b0000;
  }

  /** kernels.cu dQuantize&lt;0&gt; (no stochastic rounding), transcribed. */
  static int dQuantize(float[] code, float x) {
    int pivot = 127;
    int upperPivot = 255;
    int lowerPivot = 0;
    float lower = -1.0f;
    float upper = 1.0f;
    float val = code[pivot];
    for (int i = 64; i > 0; i >>= 1) {
      if (x > val) {
        lowerPivot = pivot;
        lower = val;
        pivot += i;
      } else {
        upperPivot = pivot;
        upper = val;
        pivot -= i;
      }
      val = code[pivot];
    }
    if (upperPivot == 255) upper = code[upperPivot];
    if (lowerPivot == 0) lower = code[lowerPivot];
    if (x > val) {
      float midpoint = (upper + val) * 0.5f;
      return x > midpoint ? upperPivot : pivot;
    }
    float midpoint = (lower + val) * 0.5f;
    return x < midpoint ? lowerPivot : pivot;
  }

  /**
   * Blocks of {@code size} over {@code x} (the tail of the last one read as 0): absmax per block
   * and every element times {@code 1.0f / absmax}, as kQuantizeBlockwise does.
   */
  static float[] absmaxes(float[] x, int size) {
    int nb = (x.length + size - 1) / size;
    float[] a = new float[nb];
    for (int b = 0; b < nb; b++) {
      float m = 0f;
      for (int i = b * size; i < Math.min(x.length, (b + 1) * size); i++) {
        m = Math.max(m, Math.abs(x[i]));
      }
      a[b] = m;
    }
    return a;
  }

  /** NF4 with double quantization; {@code dynamic} is bitsandbytes' 256-entry dynamic map. */
  static Nf4 nf4(float[] w, float[] dynamic) {
    int n = w.length;
    float[] absmax = absmaxes(w, 64);
    int nb = absmax.length;
    byte[] codes = new byte[(n + 1) / 2];
    for (int b = 0; b < nb; b++) {
      float r = 1.0f / absmax[b];
      for (int i = b * 64; i < (b + 1) * 64; i += 2) {
        if (i / 2 >= codes.length) break;
        float hi = i < n ? w[i] : 0f;
        float lo = i + 1 < n ? w[i + 1] : 0f;
        codes[i / 2] = (byte) (nf4Tree(hi * r) << 4 | nf4Tree(lo * r));
      }
    }
    double sum = 0;
    for (float a : absmax) sum += a;
    float offset = (float) (sum / nb);
    float[] centred = new float[nb];
    for (int b = 0; b < nb; b++) centred[b] = absmax[b] - offset;
    float[] absmax2 = absmaxes(centred, 256);
    byte[] absmaxCodes = new byte[nb];
    float[] deqAbsmax = new float[nb];
    for (int b = 0; b < nb; b++) {
      float r2 = 1.0f / absmax2[b / 256];
      int q = dQuantize(dynamic, centred[b] * r2);
      absmaxCodes[b] = (byte) q;
      float v = dynamic[q] * absmax2[b / 256];
      deqAbsmax[b] = v + offset;
    }
    float[] deq = new float[n];
    for (int i = 0; i < n; i++) {
      int c = (codes[i / 2] >> (i % 2 == 0 ? 4 : 0)) & 15;
      deq[i] = LEVELS[c] * deqAbsmax[i / 64];
    }
    return new Nf4(codes, absmax, absmaxCodes, absmax2, offset, deqAbsmax, deq);
  }

  /** Blockwise int8 as Int8Weight documents it. */
  record Int8(byte[] codes, float[] absmax, float[] dequantized) {}

  static Int8 int8(float[] w) {
    float[] absmax = absmaxes(w, 64);
    byte[] codes = new byte[w.length];
    float[] deq = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      float r = 1.0f / absmax[i / 64];
      float x = w[i] * r * 127f;
      codes[i] = (byte) (Float.isNaN(x) ? 0 : Math.rint(x));
      deq[i] = codes[i] * (absmax[i / 64] * (1f / 127f));
    }
    return new Int8(codes, absmax, deq);
  }

  /** float32 to bfloat16 and back, rounding to nearest even (finite inputs). */
  static float bf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    int rounded = (bits + 0x7FFF + ((bits >>> 16) & 1)) & 0xFFFF0000;
    return Float.intBitsToFloat(rounded);
  }
}
