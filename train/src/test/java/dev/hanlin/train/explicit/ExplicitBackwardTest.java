package dev.hanlin.train.explicit;

import static dev.hanlin.train.explicit.BlockPassTest.check;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Autocast;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The whole model's explicit forward and backward against autograd's backward of the model's own
 * forward and the trainer's loss (summed cross-entropy / count): the loss and every gradient within
 * 1e-5 relative in float32, keeping activations and recomputing them, logits in one chunk and in
 * several, plain and packed rows, grouped-query and tied-head models, LoRA with and without dropout
 * (the same masks as autograd's from the same seed); gradients accumulate over calls as autograd's
 * do; each stage reports final gradients in RecomputingBackward's order.
 */
class ExplicitBackwardTest {
  private static final double PER_RANK = 11; // labelled targets below
  private static final Tensor IDS =
      Torch.fromLongs(new long[] {5, 9, 33, 7, 81, 12, 3, 44, 100, 2, 60, 61}, 2, 6).retain();
  private static final Tensor TARGETS =
      Torch.fromLongs(new long[] {9, 33, 7, 81, 12, -100, 44, 100, 2, 60, 61, 70}, 12).retain();
  private static final Tensor POS =
      Torch.fromLongs(new long[] {0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 4, 5}, 2, 6).retain();
  private static final Tensor SEG =
      Torch.fromLongs(new long[] {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, 2, 6).retain();

  @Test
  void gradientsEqualAutogradsKeepingOrRecomputingInChunksOrNot() throws Exception {
    for (String name : new String[] {"gqa", "tied"})
      for (boolean packed : new boolean[] {false, true})
        for (boolean recompute : new boolean[] {false, true})
          for (int chunk : new int[] {0, 5}) {
            LlamaModel m = Models.trainable(name, DType.F32);
            compare(
                m,
                packed,
                recompute,
                chunk,
                1,
                name + " packed=" + packed + " recompute=" + recompute + " chunk=" + chunk);
          }
  }

  @Test
  void loraAdaptersAndAccumulationOverTwoCalls() throws Exception {
    compare(Models.withLora(), true, true, 5, 1, "lora");
    compare(Models.trainable("gqa", DType.F32), false, false, 0, 2, "accumulated");
  }

  /**
   * LoRA dropout on all seven projections (each its own mask): from the same seed the explicit pass
   * draws autograd's masks, keeping activations or recomputing them (the recompute replays the
   * generator), plain and packed rows; the loss and every adapter's gradient within 1e-5 (measured
   * 1.5e-6), and the generator ends where autograd's forward left it. The masks are applied: the
   * gradients are far from those of the same adapters without dropout.
   */
  @Test
  void loraDropoutDrawsAutogradsMasksKeepingOrRecomputing() throws Exception {
    LlamaModel none = Models.withLora(0.0, null);
    Map<String, Tensor> noDropout = grads(none, false, false, 0);
    double worst = 0;
    for (double p : new double[] {0.05, 0.1}) {
      LlamaModel m = Models.withLora(p, null);
      for (boolean packed : new boolean[] {false, true})
        for (boolean recompute : new boolean[] {false, true}) {
          String what = "dropout " + p + " packed=" + packed + " recompute=" + recompute;
          worst = Math.max(worst, compare(m, packed, recompute, 5, 1, false, 1e-5, what));
          if (packed || recompute) continue;
          Map<String, Tensor> got = grads(m, false, false, 0);
          double far = 0;
          for (var e : got.entrySet())
            far = Math.max(far, relative(e.getValue(), noDropout.get(e.getKey())));
          assertTrue(far > 1e-2, what + ": dropout changes the gradients (" + far + ")");
        }
    }
    System.out.printf("LoRA dropout, float32: gradients within %.2e of autograd's%n", worst);
  }

  /**
   * The same under bf16 autocast (the LoRA layers' input is the float32 norm output there, dropped
   * out in float32 and cast, as autograd's autocast does). Both bf16 passes are about 3e-2 from the
   * float32 gradients of the same masks (max |a−b| / max |b|), in different directions: the
   * explicit pass adds the LoRA product inside the base GEMM, rounding once where autograd rounds
   * three times. So the explicit bf16 gradients must be within 4e-2 of the float32 ones and no
   * farther than autograd's bf16 (measured 2.96e-2 against 3.10e-2; 3.59e-2 when it rounded as
   * autograd does), and within 6e-2 of autograd's bf16 (measured 4.7e-2), the loss within 2e-2.
   */
  @Test
  void loraDropoutUnderBf16Autocast() throws Exception {
    LlamaModel m = Models.withLora(0.1, null);
    double worst = 0;
    for (boolean recompute : new boolean[] {false, true}) {
      worst =
          Math.max(worst, compare(m, true, recompute, 0, 1, true, 6e-2, "autocast r=" + recompute));
      Map<String, Tensor> truth = run(m, true, recompute, false, false);
      Map<String, Tensor> autograd = run(m, true, recompute, true, false);
      Map<String, Tensor> explicit = run(m, true, recompute, true, true);
      double ag = 0, ex = 0;
      for (var e : truth.entrySet()) {
        ag = Math.max(ag, relative(autograd.get(e.getKey()), e.getValue()));
        ex = Math.max(ex, relative(explicit.get(e.getKey()), e.getValue()));
      }
      System.out.printf(
          "bf16 against float32 (recompute=%s): autograd %.2e, explicit %.2e%n", recompute, ag, ex);
      assertTrue(ex <= 4e-2 && ex <= 1.1 * ag, "explicit bf16 " + ex + " vs autograd bf16 " + ag);
    }
    System.out.printf("LoRA dropout, bf16 autocast: gradients within %.2e of autograd's%n", worst);
  }

  /**
   * A frozen base's q/k/v and gate/up weights are joined on the first pass: each named weight
   * becomes a view of its rows in one buffer (consecutive in the parts' order), with its values
   * bitwise unchanged, so later passes read the fused weight without a copy; a second pass gives
   * bitwise the first's gradients. Trained weights stay apart (their gradients are split back).
   */
  @Test
  void frozenBaseJoinsItsFusedWeightsOnceKeepingValues() throws Exception {
    LlamaModel m = Models.withLora(0.05, null);
    List<List<Tensor>> groups = new ArrayList<>();
    for (var b : m.layers()) {
      var at = b.attention();
      groups.add(List.of(dense(at.q()), dense(at.k()), dense(at.v())));
      groups.add(List.of(dense(b.mlp().gate()), dense(b.mlp().up())));
    }
    List<float[]> before = new ArrayList<>();
    for (List<Tensor> g : groups) for (Tensor w : g) before.add(w.toFloatArray());
    Map<String, Tensor> first = grads(m, false, true, 0);
    int i = 0;
    for (List<Tensor> g : groups) {
      long at = g.getFirst().storageOffset();
      for (Tensor w : g) {
        assertTrue(w.isAliasOf(g.getFirst()), "one buffer per group");
        assertEquals(at, w.storageOffset(), "rows in the parts' order");
        at += w.numel();
        org.junit.jupiter.api.Assertions.assertArrayEquals(before.get(i++), w.toFloatArray());
      }
    }
    Map<String, Tensor> second = grads(m, false, true, 0);
    for (var e : first.entrySet())
      org.junit.jupiter.api.Assertions.assertArrayEquals(
          e.getValue().toFloatArray(), second.get(e.getKey()).toFloatArray(), e.getKey());
    LlamaModel trained = Models.trainable("gqa", DType.F32);
    grads(trained, false, false, 0);
    var at = trained.layers().getFirst().attention();
    assertTrue(!dense(at.q()).isAliasOf(dense(at.k())), "trained weights are not joined");
  }

  private static Tensor dense(dev.hanlin.model.Linear l) {
    return ((dev.hanlin.model.BaseWeight.Dense) l.weight()).tensor();
  }

  /**
   * The gradients of {@code m}'s adapters from seed 17 over packed or plain rows, in bf16 autocast
   * or float32, by the explicit pass or autograd's backward of the model's forward.
   */
  private static Map<String, Tensor> run(
      LlamaModel m, boolean packed, boolean recompute, boolean autocast, boolean explicit) {
    Map<String, Tensor> params = Models.trained(m);
    Tensor pos = packed ? POS : null, seg = packed ? SEG : null;
    Torch.manualSeed(17);
    try (Scope s = Scope.open();
        Grad.Guard ac = autocast ? Autocast.enable(Device.CPU, DType.BF16) : () -> {}) {
      if (explicit)
        ExplicitBackward.run(m, IDS, pos, seg, TARGETS, 1 / PER_RANK, recompute, null, 0);
      else {
        Tensor logits = packed ? m.forwardPacked(IDS, pos, seg) : m.forward(IDS, null);
        Tensor loss = Torch.crossEntropySum(logits.reshape(-1, logits.size(-1)).toFloat(), TARGETS);
        loss.div(PER_RANK).backward();
      }
    }
    return Models.takeGrads(params);
  }

  /**
   * Given a {@code RecomputingBackward.Walk}, the explicit pass enters, leaves and completes the
   * stages in the recomputing backward's order, keeping activations or recomputing them, with a
   * trained embedding and a frozen one (LoRA): offload's pipelined update waits for each unit's new
   * weights when the pass enters it (before, the explicit pass never entered a stage, and the
   * trainer waited for the whole update before each step).
   */
  @Test
  void aWalkIsEnteredAndLeftInTheRecomputingBackwardsOrder() throws Exception {
    for (boolean lora : new boolean[] {false, true}) {
      LlamaModel m = lora ? Models.withLora() : Models.trainable("gqa", DType.F32);
      List<String> want = new ArrayList<>();
      try (Scope s = Scope.open()) {
        dev.hanlin.train.RecomputingBackward.run(
                m,
                IDS,
                null,
                null,
                logits ->
                    Torch.crossEntropySum(logits.reshape(-1, logits.size(-1)).toFloat(), TARGETS),
                recording(want))
            .close();
      }
      Models.takeGrads(Models.trained(m));
      for (boolean recompute : new boolean[] {false, true}) {
        List<String> got = new ArrayList<>();
        try (Scope s = Scope.open()) {
          ExplicitBackward.run(m, IDS, null, null, TARGETS, 1.0, recompute, recording(got));
        }
        Models.takeGrads(Models.trained(m));
        assertEquals(want, got, "lora=" + lora + " recompute=" + recompute);
      }
      assertEquals(lora ? "accept -1" : "enter -1", want.get(want.size() - (lora ? 1 : 2)));
    }
  }

  private static dev.hanlin.train.RecomputingBackward.Walk recording(List<String> events) {
    return new dev.hanlin.train.RecomputingBackward.Walk() {
      @Override
      public void enter(int stage) {
        events.add("enter " + stage);
      }

      @Override
      public void leave(int stage) {
        events.add("leave " + stage);
      }

      @Override
      public void accept(int stage) {
        events.add("accept " + stage);
      }
    };
  }

  /** The explicit pass's gradients of {@code m} from seed 17. */
  private static Map<String, Tensor> grads(
      LlamaModel m, boolean packed, boolean recompute, int chunk) {
    Torch.manualSeed(17);
    try (Scope s = Scope.open()) {
      ExplicitBackward.run(
          m, IDS, packed ? POS : null, packed ? SEG : null, TARGETS, 1, recompute, null, chunk);
    }
    return Models.takeGrads(Models.trained(m));
  }

  /** max |a−b| / max |b|. */
  private static double relative(Tensor a, Tensor b) {
    float[] x = a.toFloatArray(), y = b.toFloatArray();
    double diff = 0, scale = 0;
    for (int i = 0; i < x.length; i++) {
      diff = Math.max(diff, Math.abs(x[i] - y[i]));
      scale = Math.max(scale, Math.abs(y[i]));
    }
    return diff / scale;
  }

  /**
   * Stages in RecomputingBackward's order (the head, each layer from the last, then -1), and every
   * weight's gradient final at its stage ({@code RecomputingBackward.stageOf}), as ZeRO-2 sends it
   * on then: also the tied head's embedding, which only the last stage completes.
   */
  @Test
  void eachStageReportsFinalGradientsInRecomputingBackwardsOrder() throws Exception {
    for (String name : new String[] {"gqa", "tied"})
      for (boolean recompute : new boolean[] {false, true}) {
        LlamaModel m = Models.trainable(name, DType.F32);
        int layers = m.config().numHiddenLayers();
        List<Integer> stages = new ArrayList<>();
        Map<String, float[]> atStage = new java.util.LinkedHashMap<>();
        try (Scope s = Scope.open()) {
          ExplicitBackward.run(
              m,
              IDS,
              null,
              null,
              TARGETS,
              1.0,
              recompute,
              stage -> {
                stages.add(stage);
                m.weights()
                    .forEach(
                        (k, w) -> {
                          if (dev.hanlin.train.RecomputingBackward.stageOf(k, layers) == stage)
                            atStage.put(k, w.grad().toFloatArray());
                        });
              });
        }
        assertEquals(List.of(2, 1, 0, -1), stages, name);
        assertEquals(m.weights().keySet(), atStage.keySet(), name);
        for (var e : Models.takeGrads(m.weights()).entrySet())
          org.junit.jupiter.api.Assertions.assertArrayEquals(
              e.getValue().toFloatArray(), atStage.get(e.getKey()), 0f, name + " " + e.getKey());
      }
  }

  /** {@code calls} explicit passes against {@code calls} autograd passes. */
  private static void compare(
      LlamaModel m, boolean packed, boolean recompute, int chunk, int calls, String what) {
    compare(m, packed, recompute, chunk, calls, false, 1e-5, what);
  }

  /**
   * As above, under bf16 autocast or not, loss and gradients within {@code tol}; returns the
   * largest relative gradient difference.
   */
  private static double compare(
      LlamaModel m,
      boolean packed,
      boolean recompute,
      int chunk,
      int calls,
      boolean autocast,
      double tol,
      String what) {
    Map<String, Tensor> params = Models.trained(m);
    Tensor pos = packed ? POS : null, seg = packed ? SEG : null;
    double want = 0, got = 0;
    Torch.manualSeed(17); // LoRA dropout: both draw from here
    try (Scope s = Scope.open();
        Grad.Guard ac = autocast ? Autocast.enable(Device.CPU, DType.BF16) : () -> {}) {
      for (int i = 0; i < calls; i++) {
        Tensor logits = packed ? m.forwardPacked(IDS, pos, seg) : m.forward(IDS, null);
        Tensor loss = Torch.crossEntropySum(logits.reshape(-1, logits.size(-1)).toFloat(), TARGETS);
        loss.div(PER_RANK).backward();
        want += loss.item();
      }
    }
    float[] wantNext = LoraDropoutTest.next();
    Map<String, Tensor> wantGrads = Models.takeGrads(params);
    Torch.manualSeed(17);
    try (Scope s = Scope.open();
        Grad.Guard ac = autocast ? Autocast.enable(Device.CPU, DType.BF16) : () -> {}) {
      for (int i = 0; i < calls; i++)
        got +=
            ExplicitBackward.run(m, IDS, pos, seg, TARGETS, 1 / PER_RANK, recompute, null, chunk)
                .item();
    }
    org.junit.jupiter.api.Assertions.assertArrayEquals(
        wantNext, LoraDropoutTest.next(), what + ": the generator ends where autograd's did");
    Map<String, Tensor> gotGrads = Models.takeGrads(params);
    assertEquals(want, got, Math.min(tol, 2e-2) * Math.abs(want), what + " loss");
    assertEquals(wantGrads.keySet(), gotGrads.keySet(), what);
    double worst = 0;
    for (var e : wantGrads.entrySet()) {
      check(gotGrads.get(e.getKey()), e.getValue(), tol, what + " " + e.getKey());
      worst = Math.max(worst, relative(gotGrads.get(e.getKey()), e.getValue()));
    }
    return worst;
  }
}
