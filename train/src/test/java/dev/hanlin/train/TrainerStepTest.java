package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.LabelledBatch;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.torch.optim.FusedAdamW;
import dev.hanlin.train.hooks.OutOfMemory;
import dev.hanlin.train.metrics.EvalMetrics;
import dev.hanlin.train.optim.AdamW;
import dev.hanlin.train.optim.LrSchedule;
import dev.hanlin.train.parallel.Parallelism;
import dev.hanlin.train.precision.Autocast;
import dev.hanlin.train.precision.Fp32;
import dev.hanlin.train.precision.MasterWeights;
import dev.hanlin.train.precision.Precision;
import dev.hanlin.train.task.Task;
import java.io.OutputStream;
import java.io.PrintStream;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link Trainer#step} in process on a tiny CPU model: gradient accumulation is the mean over the
 * window (2 micro-batches of b rows = 1 of 2b rows), the precisions agree within their formats'
 * precision, the recomputing backward is the plain one, and a step moves each weight as AdamW's
 * documented first update does.
 */
class TrainerStepTest {
  static final int B = 2, T = 8, VOCAB = 64;
  static final double LR = 1e-2, WD = 0.1, MAX_NORM = 1.0;
  static final FusedAdamW.Betas BETAS = new FusedAdamW.Betas(0.9, 0.95, 1e-8);

  /** 2·B rows of random ids (seeded), with next-token targets, some unlabelled (−100). */
  static long[][] rows() {
    Random r = new Random(42);
    long[][] rows = new long[2 * B][T + 1];
    for (long[] row : rows) for (int j = 0; j <= T; j++) row[j] = r.nextInt(VOCAB);
    return rows;
  }

  /** The rows as micro-batches of {@code rowsPerBatch} rows, in order, again and again. */
  static LabelledBatch.Source source(long[][] rows, int rowsPerBatch) {
    return new LabelledBatch.Source() {
      int next = 0;

      @Override
      public LabelledBatch next() {
        long[] ids = new long[rowsPerBatch * T], targets = new long[rowsPerBatch * T];
        long trained = 0;
        for (int i = 0; i < rowsPerBatch; i++) {
          long[] row = rows[(next + i) % rows.length];
          for (int j = 0; j < T; j++) {
            ids[i * T + j] = row[j];
            // the first target of each row is not trained, as a prompt's in SFT
            targets[i * T + j] = j == 0 ? -100 : row[j + 1];
            if (j != 0) trained++;
          }
        }
        next += rowsPerBatch;
        return new LabelledBatch(
            Torch.fromLongs(ids, rowsPerBatch, T),
            Torch.fromLongs(targets, rowsPerBatch, T),
            trained,
            Cursor.START,
            null);
      }

      @Override
      public long stepsPerEpoch() {
        return rows.length / rowsPerBatch;
      }

      @Override
      public void close() {}
    };
  }

  /** Labelled counts summed as an SFT run does (one process). */
  static final Task TASK =
      new Task() {
        @Override
        public LabelledBatch.Source loader(int block, Group g, Device d, Cursor start) {
          throw new UnsupportedOperationException();
        }

        @Override
        public double globalLabelled(long labelled, Group group) {
          return group.sum(labelled)[0];
        }

        @Override
        public Optional<EvalMetrics> evaluate(
            LlamaModel model, int block, Device device, boolean bf16, long step) {
          return Optional.empty();
        }
      };

  /** A trainer over a fresh copy of the tiny model (the same weights every time). */
  static Trainer trainer(Precision precision, Backward backward, int accumulation) {
    return trainer(precision, backward, accumulation, 0);
  }

  /** As above, the loss made {@code lossChunkRows} rows at a time (0: the whole logits). */
  static Trainer trainer(
      Precision precision, Backward backward, int accumulation, long lossChunkRows) {
    LlamaModel m =
        precision.adopt(CheckpointsTest.tiny(), new PrintStream(OutputStream.nullOutputStream()));
    for (Tensor w : m.weights().values()) w.requiresGrad(true);
    int layers = m.config().numHiddenLayers();
    Parallelism single =
        Parallelism.of(0, Group.single(), m.weights(), n -> RecomputingBackward.stageOf(n, layers));
    AdamW opt =
        new AdamW(
            AdamW.groups(
                precision.optimizerParams(m.weights()), single::owns, precision.groupCap(), WD),
            BETAS,
            MAX_NORM,
            precision.gradOf(m),
            m.weights().values());
    single.start(m.weights());
    var parts =
        new Trainer.Parts(
            m,
            precision,
            single,
            opt,
            new LrSchedule(LR, 0, 0, 100, LrSchedule.Shape.CONSTANT),
            TASK,
            backward,
            Device.CPU,
            accumulation,
            new OutOfMemory(m.config().parameterCount(), B, T, Device.CPU),
            lossChunkRows);
    return new Trainer(parts, TrainerState.start());
  }

  /** Loss, grad norm, skipped of one step. */
  static float[] step(Trainer t, LabelledBatch.Source s) {
    return t.step(s).values().values();
  }

  @Test
  void accumulatingTwoMicroBatchesIsOneBatchOfTheirRows() {
    long[][] rows = rows();
    float[] twoOfB = step(trainer(new Fp32(), Backward.PLAIN, 2), source(rows, B));
    float[] oneOf2B = step(trainer(new Fp32(), Backward.PLAIN, 1), source(rows, 2 * B));
    assertEquals(oneOf2B[0], twoOfB[0], 1e-5, "loss");
    assertEquals(oneOf2B[1], twoOfB[1], 1e-5 * oneOf2B[1], "grad norm");
    assertEquals(0f, twoOfB[2], "not skipped");
    // and the recomputing backward gives the same step
    float[] recomputed = step(trainer(new Fp32(), Backward.RECOMPUTING, 2), source(rows, B));
    assertEquals(twoOfB[0], recomputed[0], 1e-6, "loss, recomputed");
    assertEquals(twoOfB[1], recomputed[1], 1e-6 * twoOfB[1], "grad norm, recomputed");
  }

  /**
   * bf16 autocast and bf16 master weights against fp32: the loss within 2 % and the gradient norm
   * within 5 % (bf16 keeps 8 bits of mantissa, ~0.4 % per rounding; a tiny model's few layers
   * accumulate a few of them); the master weights end as the fp32 masters rounded to bf16.
   */
  @Test
  void precisionsAgreeWithinTheirFormats() {
    long[][] rows = rows();
    float[] fp32 = step(trainer(new Fp32(), Backward.PLAIN, 2), source(rows, B));
    float[] autocast = step(trainer(new Autocast(), Backward.PLAIN, 2), source(rows, B));
    MasterWeights mw = new MasterWeights();
    Trainer masters = trainer(mw, Backward.PLAIN, 2);
    float[] master = step(masters, source(rows, B));
    for (float[] v : new float[][] {autocast, master}) {
      assertEquals(fp32[0], v[0], 0.02 * fp32[0], "loss");
      assertEquals(fp32[1], v[1], 0.05 * fp32[1], "grad norm");
      assertEquals(0f, v[2]);
    }
    assertNotEquals(fp32[0], autocast[0], "autocast did compute in bf16");
    // the bf16 model holds the updated fp32 masters, rounded
    LlamaModel bf16 = masters.parts().model();
    LlamaModel saved = mw.saved(bf16);
    for (var e : bf16.weights().entrySet()) {
      assertEquals(DType.BF16, e.getValue().dtype(), e.getKey());
      assertArrayEquals(
          saved.weights().get(e.getKey()).to(DType.BF16).toFloat().toFloatArray(),
          e.getValue().toFloat().toFloatArray(),
          0f,
          e.getKey());
    }
  }

  /**
   * The first AdamW step, clipped: with zero moments the update is {@code lr · ĝ / (|ĝ| + eps)} for
   * the clipped gradient ĝ, after decoupled decay {@code p · (1 − lr · wd)} of matrices (not of the
   * norm weights).
   */
  @Test
  void aStepMovesEachWeightAsAdamW() {
    Trainer t = trainer(new Fp32(), Backward.PLAIN, 2);
    Map<String, Tensor> w = t.parts().model().weights();
    Map<String, float[]> before = new java.util.LinkedHashMap<>();
    w.forEach((k, v) -> before.put(k, v.toFloatArray()));
    float[] v = step(t, source(rows(), B));
    double scale = Math.max(1, (v[1] + 1e-6) / MAX_NORM); // what the kernel divides by
    assertFalse(scale == 1, "the tiny model's norm is above 1: clipping is exercised");
    int checked = 0, total = 0;
    for (var e : w.entrySet()) {
      float[] p0 = before.get(e.getKey()), p1 = e.getValue().toFloatArray();
      float[] g = e.getValue().grad().toFloatArray(); // kept until the next step zeroes it
      double decay = e.getValue().dim() >= 2 ? WD : 0;
      for (int i = 0; i < p0.length; i++) {
        total++;
        double gi = g[i] / scale;
        // where |ĝ| is within a few hundred eps, the kernel's float32 rounding of sqrt(v) moves
        // the update by up to 0.1 %: those elements are not compared (unused embedding rows,
        // with ĝ = 0 exactly, are: they only decay)
        if (gi != 0 && Math.abs(gi) < 1e-5) continue;
        double expected = p0[i] * (1 - LR * decay) - LR * gi / (Math.abs(gi) + BETAS.eps());
        assertEquals(expected, p1[i], 2e-6, e.getKey() + "[" + i + "]");
        checked++;
      }
      assertNotEquals(p0[p0.length - 1], p1[p1.length - 1], e.getKey() + " moved");
    }
    assertTrue(checked > total * 0.8, checked + " of " + total + " elements checked");
  }
}
