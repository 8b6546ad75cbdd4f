package dev.hanlin.train.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.RecomputingBackward;
import java.io.OutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * ZeRO-3's prefetch: which stage is gathered ahead as the recomputing backward enters each stage,
 * that at most two stages are gathered at a time, and that one prefetching rank's loss and
 * gradients are an unsharded run's bit for bit.
 */
class Zero3PrefetchTest {
  static final int LAYERS = 3;

  static LlamaConfig config() {
    return new LlamaConfig(
        64,
        16,
        32,
        LAYERS,
        2,
        1,
        8,
        1e-5,
        10000,
        null,
        64,
        false,
        0.02,
        1,
        List.of(2),
        null,
        DType.F32,
        false,
        false);
  }

  /** Forward -1, 0..L-1, L; backward L-1..0, -1: each enter starts the next stage's gather. */
  @Test
  void theNextStageOfTheWalkIsGatheredAhead() {
    Zero3Prefetch p = new Zero3Prefetch(LAYERS);
    int[] walk = {-1, 0, 1, 2, 3, 2, 1, 0, -1};
    int[] want = {0, 1, 2, 3, 2, 1, 0, -1, Zero3Prefetch.NONE};
    for (int micro = 0; micro < 2; micro++) // the next micro-batch starts afresh
    for (int i = 0; i < walk.length; i++) assertEquals(want[i], p.next(walk[i]), "at " + i);
  }

  /** With a frozen embedding (LoRA) the backward ends at block 0: nothing is gathered after it. */
  @Test
  void aFrozenEmbeddingIsNotGatheredAheadOfABackwardItDoesNotHave() {
    Zero3Prefetch p = new Zero3Prefetch(LAYERS, false);
    int[] walk = {-1, 0, 1, 2, 3, 2, 1, 0};
    int[] want = {0, 1, 2, 3, 2, 1, 0, Zero3Prefetch.NONE};
    for (int i = 0; i < walk.length; i++) assertEquals(want[i], p.next(walk[i]), "at " + i);
  }

  @Test
  void atMostTwoStagesAreGatheredAndTheGradientsAreTheUnshardedOnes() {
    LlamaModel plain = LlamaModel.init(config(), 1, DType.F32, Device.CPU);
    LlamaModel sharded = LlamaModel.init(config(), 1, DType.F32, Device.CPU);
    for (LlamaModel m : List.of(plain, sharded))
      m.weights().values().forEach(w -> w.requiresGrad(true));
    Zero3 zero3 =
        new Zero3(
            Group.single(),
            sharded,
            sharded.weights(),
            new PrintStream(OutputStream.nullOutputStream()));
    List<String> seen = new ArrayList<>();
    var inner = (RecomputingBackward.Walk) zero3.afterBackwardStage(sharded.weights(), true);
    var walk =
        new RecomputingBackward.Walk() {
          @Override
          public void enter(int stage) {
            inner.enter(stage);
            seen.add(stage + ":" + String.join(",", zero3.liveUnits()));
          }

          @Override
          public void leave(int stage) {
            inner.leave(stage);
          }

          @Override
          public void accept(int stage) {
            inner.accept(stage);
          }
        };
    try (Scope s = Scope.open()) {
      Tensor ids = Torch.arange(16, DType.I64, Device.CPU).view(2, 8);
      double want =
          RecomputingBackward.run(plain, ids, null, null, l -> l.pow(2).mean(), null).item();
      double got =
          RecomputingBackward.run(sharded, ids, null, null, l -> l.pow(2).mean(), walk).item();
      assertEquals(want, got, 0.0);
      String e = "model.embed_tokens", h = "head", l0 = "model.layers.0", l1 = "model.layers.1";
      String l2 = "model.layers.2";
      assertEquals(
          List.of(
              "-1:" + e + "," + l0, // forward: the embedding computes, block 0 comes
              "0:" + l0 + "," + l1,
              "1:" + l1 + "," + l2,
              "2:" + l2 + "," + h,
              "3:" + l2 + "," + h, // the head, and the last block again for its recompute
              "2:" + l1 + "," + l2,
              "1:" + l0 + "," + l1,
              "0:" + e + "," + l0,
              "-1:" + e),
          seen);
      assertEquals(List.of(), zero3.liveUnits(), "all freed after the walk");
      Zero3Layout layout = Zero3Layout.of(shapes(plain), LAYERS, 1);
      Map<String, Tensor> grads = zero3.shardGrads();
      for (Zero3Layout.Unit u : layout.units()) {
        Tensor g = grads.get(u.name());
        for (var en : u.tensors()) {
          float[] a = floats(plain.weights().get(en.name()).grad());
          float[] b = floats(g.narrow(0, en.offset(), en.numel()));
          assertArrayEquals(a, b, 0f, en.name());
        }
      }
    }
  }

  static Map<String, long[]> shapes(LlamaModel m) {
    Map<String, long[]> s = new java.util.LinkedHashMap<>();
    m.weights().forEach((k, v) -> s.put(k, v.shape()));
    return s;
  }

  static float[] floats(Tensor t) {
    Tensor c = t.reshape(-1).contiguous();
    float[] out = new float[(int) c.numel()];
    c.raw().data_ptr_float().get(out);
    return out;
  }
}
