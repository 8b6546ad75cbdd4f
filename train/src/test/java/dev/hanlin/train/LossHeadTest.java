package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.LabelledBatch;
import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.LoraAdapters;
import dev.hanlin.model.LoraConfig;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The chunked loss ({@code loss_chunk_tokens}) against the whole logits, through both backwards:
 * the same loss and the same gradient for every trained weight (fp32: within 1e-6 relative, the
 * difference being summation order), for chunk sizes that do not divide the 12 rows, with
 * unlabelled targets, packed rows, LoRA with lm_head or embed_tokens saved, a tied head, bf16
 * autocast and a bf16 model.
 */
class LossHeadTest {
  static final long[] IDS = {5, 9, 33, 7, 81, 12, 3, 44, 100, 2, 60, 61}; // (2, 6)
  static final long[] TARGETS = {9, 33, 7, 81, 12, -100, 44, 100, 2, 60, 61, -100};
  static final long[] POSITIONS = {0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 4, 5};
  static final long[] SEGMENTS = {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0};
  static final long[] CHUNKS = {1, 5, 7, 12, 100};
  static final double PER_RANK = 10; // the labelled targets

  record Result(double loss, Map<String, float[]> grads) {}

  /** One micro-batch's forward and backward; the gradients of {@code trained}, then cleared. */
  static Result run(
      LlamaModel m, Map<String, Tensor> trained, Backward bw, long chunk, boolean packed) {
    Torch.manualSeed(11); // LoRA dropout draws the same masks in every run
    try (Scope s = Scope.open()) {
      LabelledBatch b =
          new LabelledBatch(
              Torch.fromLongs(IDS, 2, 6),
              Torch.fromLongs(TARGETS, 2, 6),
              10,
              Cursor.START,
              null,
              packed ? Torch.fromLongs(POSITIONS, 2, 6) : null,
              packed ? Torch.fromLongs(SEGMENTS, 2, 6) : null);
      double loss =
          bw.run(m, b, new LossHead(b.targets().reshape(-1), chunk), PER_RANK, null).item();
      Map<String, float[]> grads = new LinkedHashMap<>();
      for (var e : trained.entrySet()) {
        Tensor g = e.getValue().grad();
        assertNotNull(g, e.getKey() + " has a gradient");
        grads.put(e.getKey(), g.toFloat().toFloatArray());
        e.getValue().clearGrad();
      }
      return new Result(loss, grads);
    }
  }

  /** Chunked runs of every size against the whole logits, both backwards, plain and packed rows. */
  static void assertChunkedIsWhole(
      String what, LlamaModel m, Map<String, Tensor> trained, double tolerance) {
    for (Backward bw : Backward.values())
      for (boolean packed : new boolean[] {false, true}) {
        Result whole = run(m, trained, bw, 0, packed);
        for (long chunk : CHUNKS) {
          String at = what + " " + bw + " packed=" + packed + " chunk=" + chunk;
          Result r = run(m, trained, bw, chunk, packed);
          assertEquals(whole.loss(), r.loss(), tolerance * Math.abs(whole.loss()), at + " loss");
          for (var e : whole.grads().entrySet())
            assertClose(e.getValue(), r.grads().get(e.getKey()), tolerance, at + " " + e.getKey());
        }
      }
  }

  /**
   * Relative error in the 2-norm, {@code |actual − expected| / |expected| <= tolerance}, as
   * gradients are compared (an element far below the largest one carries no meaning at fp32 eps).
   */
  static void assertClose(float[] expected, float[] actual, double tolerance, String what) {
    assertEquals(expected.length, actual.length, what);
    double norm = 0, diff = 0;
    for (int i = 0; i < expected.length; i++) {
      norm += (double) expected[i] * expected[i];
      double d = (double) expected[i] - actual[i];
      diff += d * d;
    }
    assertTrue(norm > 0, what + " is not all zero");
    double rel = Math.sqrt(diff / norm);
    assertTrue(rel <= tolerance, what + ": relative difference " + rel);
  }

  @Test
  void fullTrainingGradientsEqualTheWholeLogits() throws Exception {
    for (String name : TestData.PARITY_MODELS) { // "tied": the head is the embedding
      LlamaModel m = TestData.trainableParityModel(name);
      assertChunkedIsWhole(name, m, m.weights(), 1e-6);
    }
  }

  @Test
  void loraWithTheHeadOrTheEmbeddingSavedEqualsTheWholeLogits() throws Exception {
    for (String name : TestData.PARITY_MODELS) {
      LlamaModel base =
          HfCheckpoint.load(TestData.dir("parity").resolve(name), DType.F32, Device.CPU);
      // the tied model saves its embedding (which is its head), the other its lm_head
      String saved = name.equals("tied") ? "embed_tokens" : "lm_head";
      LoraAdapters ad =
          LoraAdapters.init(base, new LoraConfig(4, 8.0, 0.3, null, null, List.of(saved)), 7);
      LlamaModel m = base.withLora(ad);
      for (Tensor w : ad.weights().values()) w.requiresGrad(true);
      giveLoraBValues(ad);
      assertChunkedIsWhole("lora " + name, m, ad.weights(), 1e-6);
    }
  }

  @Test
  void aFrozenHeadGetsNoGradientAndTheAdaptersTheWholeLogitsOnes() throws Exception {
    LlamaModel base =
        HfCheckpoint.load(TestData.dir("parity").resolve("gqa"), DType.F32, Device.CPU);
    LoraAdapters ad = LoraAdapters.init(base, new LoraConfig(4, 8.0, 0.0, null, null, null), 7);
    LlamaModel m = base.withLora(ad);
    for (Tensor w : ad.weights().values()) w.requiresGrad(true);
    giveLoraBValues(ad);
    assertChunkedIsWhole("frozen head", m, ad.weights(), 1e-6);
    assertEquals(null, base.lmHeadWeight().grad());
  }

  /**
   * Under bf16 autocast (fp32 weights, bf16 GEMMs) the whole logits' lm_head gradient is one bf16
   * GEMM, rounded to bf16 once; each chunk's is rounded on its own and the chunks summed in fp32:
   * they differ by bf16's rounding (2^-8 relative), and so does what flows below.
   */
  @Test
  void underAutocastTheChunksGiveTheWholeLogitsGradients() throws Exception {
    LlamaModel m = TestData.trainableParityModel("gqa");
    try (Grad.Guard ac = dev.hanlin.torch.Autocast.enable(Device.CPU, DType.BF16)) {
      assertChunkedIsWhole("autocast", m, m.weights(), 4e-3);
    }
  }

  /**
   * A bf16 model (master weights' compute copy): the chunks' lm_head gradients are summed in fp32
   * and rounded once, so they stay within bf16's rounding of the whole GEMM's.
   */
  @Test
  void aBf16ModelStaysWithinBf16Rounding() throws Exception {
    LlamaModel m = TestData.trainableParityModel("gqa").withDtype(DType.BF16);
    for (Tensor w : m.weights().values()) w.requiresGrad(true);
    Result whole = run(m, m.weights(), Backward.PLAIN, 0, false);
    Result r = run(m, m.weights(), Backward.PLAIN, 5, false);
    assertEquals(whole.loss(), r.loss(), 1e-2 * whole.loss());
    for (var e : whole.grads().entrySet())
      assertClose(e.getValue(), r.grads().get(e.getKey()), 2e-2, "bf16 " + e.getKey());
  }

  /** Evaluation's chunked sums are those of the whole logits: loss, accuracy and count. */
  @Test
  void evaluationInChunksCountsTheSame() throws Exception {
    LlamaModel m = TestData.trainableParityModel("tied");
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.inference()) {
      Tensor ids = Torch.fromLongs(IDS, 2, 6), targets = Torch.fromLongs(TARGETS, 2, 6);
      Evaluator.Sums whole = new Evaluator.Sums();
      whole.add(m.forward(ids, null), targets);
      var expected = whole.metrics(1);
      for (long chunk : CHUNKS) {
        Evaluator.Sums sums = new Evaluator.Sums();
        new LossHead(targets.reshape(-1), chunk)
            .forEachChunk(
                m,
                m.hidden(ids, null, null),
                (logits, t) -> {
                  assertTrue(logits.size(0) <= chunk, "at most one chunk of logits at a time");
                  sums.add(logits, t);
                });
        var got = sums.metrics(1);
        assertEquals(expected.loss(), got.loss(), 1e-6 * expected.loss(), "chunk " + chunk);
        assertEquals(expected.accuracy(), got.accuracy(), 0.0, "chunk " + chunk);
        assertEquals(expected.tokens(), got.tokens(), "chunk " + chunk);
      }
    }
  }

  /**
   * Whole optimizer steps through {@link Trainer#step}, two micro-batches accumulated, both
   * backwards: with the loss in chunks of 5 of each micro-batch's 16 rows, three steps' losses and
   * gradient norms are those of the whole logits (fp32: 1e-6 relative; bf16 autocast and bf16
   * master weights: within bf16's rounding, 1 %).
   */
  @Test
  void accumulatedStepsTrainAsTheWholeLogits() {
    long[][] rows = TrainerStepTest.rows();
    for (Backward bw : Backward.values())
      for (String precision : List.of("fp32", "autocast", "master")) {
        double tolerance = precision.equals("fp32") ? 1e-6 : 1e-2;
        Trainer whole = TrainerStepTest.trainer(precision(precision), bw, 2, 0);
        Trainer chunked = TrainerStepTest.trainer(precision(precision), bw, 2, 5);
        var wholeData = TrainerStepTest.source(rows, TrainerStepTest.B);
        var chunkedData = TrainerStepTest.source(rows, TrainerStepTest.B);
        for (int step = 1; step <= 3; step++) {
          float[] a = TrainerStepTest.step(whole, wholeData);
          float[] b = TrainerStepTest.step(chunked, chunkedData);
          String at = bw + " " + precision + " step " + step;
          assertEquals(a[0], b[0], tolerance * a[0], at + " loss");
          assertEquals(a[1], b[1], tolerance * a[1], at + " grad norm");
          assertEquals(0f, b[2], at + " not skipped");
        }
      }
  }

  static dev.hanlin.train.precision.Precision precision(String name) {
    return switch (name) {
      case "fp32" -> new dev.hanlin.train.precision.Fp32();
      case "autocast" -> new dev.hanlin.train.precision.Autocast();
      default -> new dev.hanlin.train.precision.MasterWeights();
    };
  }

  /**
   * {@code loss_chunk_tokens}: auto (the default) chunks on CUDA only, so CPU runs of existing
   * configs keep the whole logits; a count is taken as given; anything else names the key.
   */
  @Test
  void theConfigKeyIsAutoACountOrAnError() {
    PretrainConfig auto = PretrainConfigTest.with(Map.of());
    assertEquals("auto", auto.lossChunkTokens());
    assertEquals(0, auto.lossChunkRows(Device.CPU));
    assertEquals(PretrainConfig.AUTO_LOSS_CHUNK_TOKENS, auto.lossChunkRows(Device.cuda(0)));
    PretrainConfig n = PretrainConfigTest.with(Map.of("loss_chunk_tokens", 64));
    assertEquals(64, n.lossChunkRows(Device.CPU));
    assertEquals(64, n.lossChunkRows(Device.cuda(0)));
    assertEquals(
        0, PretrainConfigTest.with(Map.of("loss_chunk_tokens", 0)).lossChunkRows(Device.cuda(0)));
    for (Object bad : List.of(-1, "many", 1.5)) {
      var e =
          org.junit.jupiter.api.Assertions.assertThrows(
              RuntimeException.class,
              () -> PretrainConfigTest.with(Map.of("loss_chunk_tokens", bad)));
      assertTrue(e.getMessage().contains("loss_chunk_tokens"), e.getMessage());
    }
  }

  @Test
  void negativeChunkRowsAreRejected() {
    var e =
        org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class, () -> new LossHead(null, -1));
    assertTrue(e.getMessage().contains("-1"), e.getMessage());
  }

  /** LoRA's B starts at zero: give it values so that A's gradients show too. */
  static void giveLoraBValues(LoraAdapters ad) {
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.noGrad()) {
      for (var e : ad.weights().entrySet())
        if (e.getKey().contains("lora_B"))
          e.getValue()
              .copy_(
                  Torch.randn(Generator.cpu(3), DType.F32, Device.CPU, e.getValue().shape())
                      .mul(0.1));
    }
  }
}
