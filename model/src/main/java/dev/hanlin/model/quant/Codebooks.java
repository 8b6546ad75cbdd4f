package dev.hanlin.model.quant;

import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The fixed code books of bitsandbytes' formats, as Java constants and as tensors cached once per
 * device (retained for the life of the process: 1 KiB each). Sources: bitsandbytes {@code
 * csrc/kernels.cu} ({@code nf4_dequantization_lut}, {@code dQuantizeNF4}) and {@code
 * bitsandbytes/functional.py} ({@code get_4bit_type("nf4")}, {@code create_dynamic_map}), at
 * bitsandbytes-foundation/bitsandbytes 95f9af3.
 */
final class Codebooks {
  private Codebooks() {}

  /**
   * The 16 NormalFloat levels, ascending; code {@code i} means {@code NF4[i]} (kernels.cu {@code
   * nf4_dequantization_lut}, the same literals as functional.py {@code get_4bit_type("nf4")}).
   */
  static final float[] NF4 = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f
  };

  /**
   * The decision thresholds of kernels.cu {@code dQuantizeNF4}, ascending: its tree is a binary
   * search that goes up when {@code x > threshold}, so the code is the number of thresholds
   * strictly below x, and a value exactly on a threshold takes the lower code. These are the tree's
   * own float literals (midpoints written by bitsandbytes' test_normal_map_tree), not midpoints
   * recomputed here, which could round differently. Java rounds a float literal's decimal straight
   * to float, as C does; going through double first (numpy's {@code
   * np.float32(0.8614784181118011)}) moves four of the fifteen by one ulp.
   */
  static final float[] NF4_THRESHOLDS = {
    -0.8480964004993439f,
    -0.6106329262256622f,
    -0.4599952697753906f,
    -0.33967943489551544f,
    -0.23460740596055984f,
    -0.13791173323988914f,
    -0.045525018125772476f,
    0.03979014977812767f,
    0.1202552504837513f,
    0.2035212516784668f,
    0.2920137718319893f,
    0.3893125355243683f,
    0.5016634166240692f,
    0.6427869200706482f,
    0.8614784181118011f
  };

  /** bitsandbytes' {@code create_dynamic_map(signed=True)}: 256 ascending float32 values. */
  static final float[] DYNAMIC = dynamicMap();

  /**
   * functional.py {@code create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)}: for
   * exponent i = 0..6, the midpoints of {@code torch.linspace(0.1, 1, 2^i + 1)} (float32) times
   * {@code 10^(i-6)} and their negatives, then 0 and 1, sorted. bitsandbytes builds it at run time
   * with torch's CPU kernels, so the float steps here follow those kernels (see {@link #linspace});
   * Nf4ReferenceTest checks the result against libtorch's own linspace, entry for entry.
   */
  static float[] dynamicMap() {
    double[] powers = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1};
    float[] data = new float[256];
    int k = 0;
    for (int i = 0; i < 7; i++) {
      float[] b = linspace(0.1f, 1f, (1 << i) + 1);
      // torch casts the Python scalar to float before a float32 multiply
      float scale = (float) powers[i];
      float[] means = new float[b.length - 1];
      for (int j = 0; j < means.length; j++) means[j] = (b[j] + b[j + 1]) / 2f;
      for (float m : means) data[k++] = m * scale;
      for (float m : means) data[k++] = m * -scale;
    }
    data[k++] = 0f;
    data[k++] = 1f;
    if (k != 256) throw new AssertionError("dynamic map has " + k + " entries");
    Arrays.sort(data);
    return data;
  }

  /**
   * torch's CPU float32 {@code linspace} (aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp): the
   * first half {@code start + step*i}, the second half {@code end - step*(steps-1-i)}, each a fused
   * multiply-add as the compiler contracts it in torch's AVX2/AVX-512 kernels (measured against
   * libtorch 2.10: the two-rounding formula differs in 42 of the map's 256 entries, this one in
   * none).
   */
  static float[] linspace(float start, float end, int steps) {
    float step = (end - start) / (steps - 1);
    int halfway = steps / 2;
    float[] out = new float[steps];
    for (int i = 0; i < steps; i++) {
      out[i] =
          i < halfway
              ? Math.fma(step, (float) i, start)
              : Math.fma(-step, (float) (steps - i - 1), end);
    }
    return out;
  }

  /** The code books as tensors on one device. */
  record Tables(Tensor nf4Thresholds, Tensor nf4Pairs, Tensor dynamic) {}

  private static final Map<Device, Tables> TABLES = new ConcurrentHashMap<>();

  /** The tables on {@code device}, made on first use and kept (retained outside every scope). */
  static Tables on(Device device) {
    return TABLES.computeIfAbsent(device, Codebooks::make);
  }

  private static Tables make(Device device) {
    // A byte holds two codes, the first (earlier) element in the high nibble (kernels.cu
    // kQuantizeBlockwise: qvals[j] = dQuantizeNF4(vals[2j]) << 4 | dQuantizeNF4(vals[2j+1])), so a
    // 256 x 2 table turns each byte into its two values with one gather.
    float[] pairs = new float[512];
    for (int b = 0; b < 256; b++) {
      pairs[2 * b] = NF4[b >> 4];
      pairs[2 * b + 1] = NF4[b & 15];
    }
    return new Tables(
        onDevice(NF4_THRESHOLDS, device, NF4_THRESHOLDS.length),
        onDevice(pairs, device, 256, 2),
        onDevice(DYNAMIC, device, 256));
  }

  private static Tensor onDevice(float[] values, Device device, long... shape) {
    Tensor cpu = Torch.fromFloats(values, shape);
    Tensor t = device.equals(Device.CPU) ? cpu : cpu.to(device);
    return t.retain();
  }
}
