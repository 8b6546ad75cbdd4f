package dev.hanlin.train;

import static dev.hanlin.train.TrainerStepTest.B;
import static dev.hanlin.train.TrainerStepTest.rows;
import static dev.hanlin.train.TrainerStepTest.source;
import static dev.hanlin.train.TrainerStepTest.trainer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.LabelledBatch;
import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.LoraAdapters;
import dev.hanlin.model.LoraConfig;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.explicit.ExplicitSupport;
import dev.hanlin.train.hooks.OutOfMemory;
import dev.hanlin.train.optim.AdamW;
import dev.hanlin.train.optim.LrSchedule;
import dev.hanlin.train.parallel.Parallelism;
import dev.hanlin.train.precision.Autocast;
import dev.hanlin.train.precision.Fp32;
import dev.hanlin.train.precision.MasterWeights;
import dev.hanlin.train.precision.Precision;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The explicit backward inside {@link Trainer#step}: 20 optimizer steps (2 micro-batches each)
 * track the plain backward's losses, within 1e-4 in float32 (measured: 9.5e-7), keeping activations
 * and recomputing them; under bf16 autocast and bf16 master weights within 5e-3 relative (measured:
 * 2.0e-3 and 9.6e-4; bf16 rounding in other orders, compounding over the steps); and {@code
 * explicit_backward} and {@link ExplicitSupport} choose it only where it applies; LoRA with dropout
 * on packed rows tracks autograd's run from the same seed.
 */
class ExplicitTrainingTest {
  private static final int STEPS = 20;

  private static float[] losses(Precision p, Backward b) {
    Trainer t = trainer(p, b, 2);
    LabelledBatch.Source s = source(rows(), B);
    float[] l = new float[STEPS];
    for (int i = 0; i < STEPS; i++) l[i] = t.step(s).values().values()[0];
    return l;
  }

  @Test
  void twentyStepsTrackThePlainBackwardsLosses() {
    float[] plain = losses(new Fp32(), Backward.PLAIN);
    assertTrue(
        plain[STEPS - 1] < plain[0] - 0.5,
        "the run learns: " + plain[0] + " → " + plain[STEPS - 1]);
    for (Backward b : new Backward[] {Backward.EXPLICIT, Backward.EXPLICIT_RECOMPUTING}) {
      float[] got = losses(new Fp32(), b);
      for (int i = 0; i < STEPS; i++) assertEquals(plain[i], got[i], 1e-4, b + " step " + (i + 1));
    }
  }

  @Test
  void bf16AutocastAndMasterWeightsTrackTheirPlainRuns() {
    for (Precision p : new Precision[] {new Autocast(), new MasterWeights()}) {
      float[] plain = losses(p, Backward.PLAIN);
      float[] got =
          losses(p instanceof Autocast ? new Autocast() : new MasterWeights(), Backward.EXPLICIT);
      for (int i = 0; i < STEPS; i++)
        assertEquals(plain[i], got[i], 5e-3 * plain[i], p + " step " + (i + 1));
    }
  }

  @Test
  void theConfigKeyAndTheSupportCheckChooseIt() throws Exception {
    PretrainConfig unset = PretrainConfigTest.with(Map.of());
    assertFalse(unset.explicitBackwardOn(false), "unset: off on the CPU");
    assertTrue(unset.explicitBackwardOn(true), "unset: on on CUDA (auto)");
    assertFalse(
        PretrainConfigTest.with(Map.of("explicit_backward", "auto")).explicitBackwardOn(false),
        "auto: not on the CPU");
    assertTrue(
        PretrainConfigTest.with(Map.of("explicit_backward", true)).explicitBackwardOn(false));
    assertFalse(
        PretrainConfigTest.with(Map.of("explicit_backward", false)).explicitBackwardOn(true));
    assertTrue(
        PretrainConfigTest.with(Map.of("explicit_backward", "auto")).explicitBackwardOn(true));
    var e =
        org.junit.jupiter.api.Assertions.assertThrows(
            RuntimeException.class,
            () -> PretrainConfigTest.with(Map.of("explicit_backward", "yes")));
    assertTrue(e.getMessage().contains("explicit_backward"), e.getMessage());

    LlamaModel dense = TestData.trainableParityModel("gqa");
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    PrintStream err = new PrintStream(log, true);
    assertTrue(ExplicitSupport.use(true, dense, err), "whatever the parallelism");
    assertFalse(ExplicitSupport.use(false, dense, err));
    assertEquals(
        List.of("explicit_backward: the hand-written block backward runs (not autograd's)"),
        log.toString().lines().toList(),
        "one line when asked for, none when not");
    log.reset();
    LlamaModel q4 =
        HfCheckpoint.load(TestData.dir("parity").resolve("gqa"), DType.F32, Device.CPU, 4);
    assertFalse(ExplicitSupport.use(true, q4, err), "a 4-bit base takes autograd's backward");
    LlamaModel base =
        HfCheckpoint.load(TestData.dir("parity").resolve("gqa"), DType.F32, Device.CPU);
    LlamaModel dropout =
        base.withLora(LoraAdapters.init(base, new LoraConfig(4, 8.0, 0.1, null, null, null), 1));
    assertTrue(ExplicitSupport.use(true, dropout, null), "LoRA dropout is supported");
    assertTrue(log.toString().contains("quantized base"), log.toString());
    assertEquals(1, log.toString().lines().count(), "one line per refusal: " + log);
  }

  /**
   * LoRA with dropout (0.05 and 0.1, all seven projections) on packed rows: 20 steps of the
   * explicit backward track autograd's from the same seed, with and without gradient checkpointing,
   * within 1e-5 (they draw the same masks in the same order); and dropout is applied: the losses
   * leave those of the same run without dropout.
   */
  @Test
  void loraDropoutTracksAutogradsRunOnPackedRowsWithAndWithoutCheckpointing() throws Exception {
    for (double p : new double[] {0.05, 0.1})
      for (boolean ckpt : new boolean[] {false, true}) {
        float[] want = loraLosses(p, Backward.of(ckpt));
        float[] got = loraLosses(p, Backward.of(ckpt, true));
        double worst = 0;
        for (int i = 0; i < STEPS; i++) {
          assertEquals(want[i], got[i], 1e-5, "p=" + p + " ckpt=" + ckpt + " step " + (i + 1));
          worst = Math.max(worst, Math.abs(want[i] - got[i]));
        }
        System.out.printf(
            "LoRA dropout %s checkpointing %s: losses %.4f → %.4f, max |Δ| vs autograd %.2e%n",
            p, ckpt, want[0], want[STEPS - 1], worst);
      }
    float[] none = loraLosses(0, Backward.EXPLICIT), drop = loraLosses(0.1, Backward.EXPLICIT);
    double apart = 0;
    for (int i = 0; i < STEPS; i++) apart = Math.max(apart, Math.abs(none[i] - drop[i]));
    assertTrue(apart > 1e-3, "dropout 0.1 changes the run: max |Δ| " + apart);
  }

  /** 20 steps of LoRA (dropout {@code p}) on packed rows, the generator seeded first. */
  private static float[] loraLosses(double p, Backward b) throws Exception {
    LlamaModel base =
        HfCheckpoint.load(TestData.dir("parity").resolve("gqa"), DType.F32, Device.CPU);
    LoraAdapters ad = LoraAdapters.init(base, new LoraConfig(4, 8.0, p, null, null, null), 7);
    for (var t : ad.weights().values()) t.requiresGrad(true);
    LlamaModel m = base.withLora(ad);
    Precision fp32 = new Fp32();
    int layers = m.config().numHiddenLayers();
    Parallelism single =
        Parallelism.of(
            0, Group.single(), ad.weights(), n -> RecomputingBackward.stageOf(n, layers));
    AdamW opt =
        single.optimizer(fp32, m, ad.weights(), TrainerStepTest.WD, TrainerStepTest.BETAS, 1.0);
    single.start(ad.weights());
    var parts =
        new Trainer.Parts(
            m,
            fp32,
            single,
            opt,
            new LrSchedule(TrainerStepTest.LR, 0, 0, 100, LrSchedule.Shape.CONSTANT),
            TrainerStepTest.TASK,
            b,
            Device.CPU,
            2,
            new OutOfMemory(m.config().parameterCount(), B, TrainerStepTest.T, Device.CPU),
            0);
    Trainer t = new Trainer(parts, TrainerState.start());
    LabelledBatch.Source s = packed(rows());
    Torch.manualSeed(23);
    float[] l = new float[STEPS];
    for (int i = 0; i < STEPS; i++) l[i] = t.step(s).values().values()[0];
    return l;
  }

  /**
   * {@link TrainerStepTest#rows} as packed micro-batches of B rows: each row two samples (3 + 5 or
   * 5 + 3 tokens), positions restarting and segments 0/1; a sample's last target is not trained.
   */
  private static LabelledBatch.Source packed(long[][] rows) {
    int t = TrainerStepTest.T;
    return new LabelledBatch.Source() {
      int next = 0;

      @Override
      public LabelledBatch next() {
        long[] ids = new long[B * t], targets = new long[B * t], pos = new long[B * t];
        long[] seg = new long[B * t];
        long trained = 0;
        for (int i = 0; i < B; i++) {
          long[] row = rows[(next + i) % rows.length];
          int first = (next + i) % 2 == 0 ? 3 : 5;
          for (int j = 0; j < t; j++) {
            int k = i * t + j;
            boolean second = j >= first;
            ids[k] = row[j];
            pos[k] = second ? j - first : j;
            seg[k] = second ? 1 : 0;
            boolean last = j == first - 1 || j == t - 1;
            targets[k] = last ? -100 : row[j + 1];
            if (!last) trained++;
          }
        }
        next += B;
        return new LabelledBatch(
            Torch.fromLongs(ids, B, t),
            Torch.fromLongs(targets, B, t),
            trained,
            Cursor.START,
            null,
            Torch.fromLongs(pos, B, t),
            Torch.fromLongs(seg, B, t));
      }

      @Override
      public long stepsPerEpoch() {
        return rows.length / B;
      }

      @Override
      public void close() {}
    };
  }
}
