package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.LoraAdapters;
import dev.hanlin.model.LoraConfig;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The recomputing backward gives the plain backward's loss and gradients. */
class RecomputingBackwardTest {
  @Test
  void sameGradientsAsThePlainBackward() throws Exception {
    for (String name : TestData.PARITY_MODELS) {
      LlamaModel m = TestData.trainableParityModel(name);
      Tensor ids =
          Torch.fromLongs(new long[] {5, 9, 33, 7, 81, 12, 3, 44, 100, 2, 60, 61}, 2, 6).retain();
      Tensor targets =
          Torch.fromLongs(new long[] {9, 33, 7, 81, 12, -100, 44, 100, 2, 60, 61, 70}, 12).retain();
      double plainLoss;
      Map<String, float[]> plain = new LinkedHashMap<>();
      try (Scope s = Scope.open()) {
        Tensor logits = m.forward(ids, null);
        Tensor loss = Torch.crossEntropy(logits.reshape(-1, logits.size(-1)), targets);
        loss.backward();
        plainLoss = loss.item();
        for (var e : m.weights().entrySet()) {
          plain.put(e.getKey(), e.getValue().grad().toFloatArray());
          e.getValue().clearGrad();
        }
      }
      try (Scope s = Scope.open()) {
        double loss =
            RecomputingBackward.run(
                    m,
                    ids,
                    null,
                    null,
                    logits -> Torch.crossEntropy(logits.reshape(-1, logits.size(-1)), targets),
                    null)
                .item();
        assertEquals(plainLoss, loss, 1e-6, name);
        for (var e : m.weights().entrySet())
          assertArrayEquals(
              plain.get(e.getKey()),
              e.getValue().grad().toFloatArray(),
              1e-6f,
              name + " " + e.getKey());
      }
    }
  }

  /**
   * With LoRA dropout the recompute draws the same masks as the forward (the generator state is
   * replayed), so the adapters' gradients equal a plain backward from the same seed, packed rows
   * too, and the generator ends where the plain forward left it.
   */
  @Test
  void loraDropoutAndPackedRowsReplayTheSameMasks() throws Exception {
    loraGradientsEqualThePlainBackward(0);
  }

  /**
   * The same on a 4-bit (NF4) and an 8-bit base, as {@code lora.load_in_bits} trains (which always
   * recomputes): each quantized projection is dequantized again in the recompute, to the same
   * values.
   */
  @Test
  void onAQuantizedBaseTooBitwise() throws Exception {
    loraGradientsEqualThePlainBackward(4);
    loraGradientsEqualThePlainBackward(8);
  }

  private static void loraGradientsEqualThePlainBackward(int bits) throws Exception {
    LlamaModel base =
        HfCheckpoint.load(TestData.dir("parity").resolve("gqa"), DType.F32, Device.CPU, bits);
    LoraAdapters ad = LoraAdapters.init(base, new LoraConfig(4, 8.0, 0.3, null, null, null), 7);
    LlamaModel m = base.withLora(ad);
    for (Tensor w : ad.weights().values()) w.requiresGrad(true);
    try (Scope s = Scope.open()) { // B starts at zero: give it values so A's gradients show too
      for (var e : ad.weights().entrySet())
        if (e.getKey().contains("lora_B"))
          try (var g = dev.hanlin.torch.Grad.noGrad()) {
            e.getValue()
                .copy_(
                    Torch.randn(
                            dev.hanlin.torch.Generator.cpu(3),
                            DType.F32,
                            Device.CPU,
                            e.getValue().shape())
                        .mul(0.1));
          }
    }
    Tensor ids =
        Torch.fromLongs(new long[] {5, 9, 33, 7, 81, 12, 3, 44, 100, 2, 60, 61}, 2, 6).retain();
    Tensor positions =
        Torch.fromLongs(new long[] {0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 4, 5}, 2, 6).retain();
    Tensor segments =
        Torch.fromLongs(new long[] {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, 2, 6).retain();
    Tensor targets =
        Torch.fromLongs(new long[] {9, 33, 7, 81, 12, -100, 44, 100, 2, 60, 61, 70}, 12).retain();
    for (boolean packed : new boolean[] {false, true}) {
      Map<String, float[]> plain = new LinkedHashMap<>();
      double plainLoss, plainNext;
      Torch.manualSeed(11);
      try (Scope s = Scope.open()) {
        Tensor logits = packed ? m.forwardPacked(ids, positions, segments) : m.forward(ids, null);
        Tensor loss = Torch.crossEntropy(logits.reshape(-1, logits.size(-1)), targets);
        loss.backward();
        plainLoss = loss.item();
        plainNext = nextDraw();
        for (var e : ad.weights().entrySet()) {
          plain.put(e.getKey(), e.getValue().grad().toFloatArray());
          e.getValue().clearGrad();
        }
      }
      Torch.manualSeed(11);
      try (Scope s = Scope.open()) {
        double loss =
            RecomputingBackward.run(
                    m,
                    ids,
                    packed ? positions : null,
                    packed ? segments : null,
                    logits -> Torch.crossEntropy(logits.reshape(-1, logits.size(-1)), targets),
                    null)
                .item();
        assertEquals(plainLoss, loss, 1e-6, "packed=" + packed);
        assertEquals(plainNext, nextDraw(), 0.0);
        for (var e : ad.weights().entrySet()) {
          assertArrayEquals(
              plain.get(e.getKey()),
              e.getValue().grad().toFloatArray(),
              bits == 0 ? 1e-6f : 0f,
              "bits=" + bits + " packed=" + packed + " " + e.getKey());
          e.getValue().clearGrad();
        }
      }
    }
  }

  /**
   * Under bf16 autocast (whose weight-cast cache the recompute clears block by block) the gradients
   * are those of the plain backward under autocast.
   */
  @Test
  void underAutocastTheGradientsAreThoseOfThePlainBackward() throws Exception {
    LlamaModel m = HfCheckpoint.load(TestData.dir("parity").resolve("gqa"), DType.F32, Device.CPU);
    for (Tensor w : m.weights().values()) w.requiresGrad(true);
    Tensor ids =
        Torch.fromLongs(new long[] {5, 9, 33, 7, 81, 12, 3, 44, 100, 2, 60, 61}, 2, 6).retain();
    Tensor targets =
        Torch.fromLongs(new long[] {9, 33, 7, 81, 12, -100, 44, 100, 2, 60, 61, 70}, 12).retain();
    Map<String, float[]> plain = new LinkedHashMap<>();
    try (Scope s = Scope.open();
        dev.hanlin.torch.Grad.Guard ac = dev.hanlin.torch.Autocast.enable(Device.CPU, DType.BF16)) {
      Tensor logits = m.forward(ids, null);
      Torch.crossEntropy(logits.reshape(-1, logits.size(-1)).toFloat(), targets).backward();
    }
    for (var e : m.weights().entrySet()) {
      plain.put(e.getKey(), e.getValue().grad().toFloatArray());
      e.getValue().clearGrad();
    }
    try (Scope s = Scope.open();
        dev.hanlin.torch.Grad.Guard ac = dev.hanlin.torch.Autocast.enable(Device.CPU, DType.BF16)) {
      RecomputingBackward.run(
          m,
          ids,
          null,
          null,
          logits -> Torch.crossEntropy(logits.reshape(-1, logits.size(-1)).toFloat(), targets),
          null);
    }
    for (var e : m.weights().entrySet())
      assertArrayEquals(
          plain.get(e.getKey()), e.getValue().grad().toFloatArray(), 1e-6f, e.getKey());
  }

  /** A draw from the global generator: where it stands. */
  private static double nextDraw() {
    try (Scope s = Scope.open()) {
      return Torch.dropout(Torch.ones(DType.F32, Device.CPU, 64), 0.5, true)
          .mul(Torch.arange(64, DType.F32, Device.CPU))
          .sum()
          .item();
    }
  }
}
