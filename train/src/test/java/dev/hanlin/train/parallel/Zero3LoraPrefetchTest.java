package dev.hanlin.train.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

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
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.RecomputingBackward;
import java.io.OutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * LoRA under ZeRO-3 prefetches the frozen base as {@link Zero3} does (both through {@link
 * UnitGathers}): as the walk enters a stage, exactly that stage's and the next stage's base units
 * are gathered or in flight, nothing after the walk (and the frozen embedding, which the backward
 * does not enter, is not gathered for it), and one rank's loss and adapter gradients are the
 * unsharded LoRA model's bit for bit.
 */
class Zero3LoraPrefetchTest {
  /**
   * The tiny model of {@link Zero3PrefetchTest} with adapters on q, v, gate and down, B non-zero.
   */
  static LlamaModel withLora() {
    LlamaModel base = LlamaModel.init(Zero3PrefetchTest.config(), 1, DType.F32, Device.CPU);
    var lc =
        new LoraConfig(
            4, 8.0, 0.0, List.of("q_proj", "v_proj", "gate_proj", "down_proj"), null, null, null);
    LoraAdapters ad = LoraAdapters.init(base, lc, 7);
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.noGrad()) {
      for (var e : ad.weights().entrySet())
        if (e.getKey().contains("lora_B"))
          e.getValue()
              .copy_(
                  Torch.randn(Generator.cpu(3), DType.F32, Device.CPU, e.getValue().shape())
                      .mul(0.1));
    }
    for (Tensor w : ad.weights().values()) w.requiresGrad(true);
    return base.withLora(ad);
  }

  @Test
  void theBaseIsGatheredOneStageAheadAndTheAdapterGradientsAreTheUnshardedOnes() {
    LlamaModel plain = withLora(), sharded = withLora();
    Zero3Lora zero3 =
        new Zero3Lora(Group.single(), sharded, new PrintStream(OutputStream.nullOutputStream()));
    zero3.start(sharded.lora().weights());
    List<String> seen = new ArrayList<>();
    var inner = (RecomputingBackward.Walk) zero3.afterBackwardStage(sharded.lora().weights(), true);
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
              "-1:" + e + "," + l0,
              "0:" + l0 + "," + l1,
              "1:" + l1 + "," + l2,
              "2:" + l2 + "," + h,
              "3:" + l2 + "," + h,
              "2:" + l1 + "," + l2,
              "1:" + l0 + "," + l1,
              "0:" + l0), // not the embedding: frozen, the walk does not come back to it
          seen);
      assertEquals(List.of(), zero3.liveUnits(), "all freed after the walk");
      Map<String, Tensor> a = plain.lora().weights(), b = sharded.lora().weights();
      assertEquals(a.keySet(), b.keySet());
      for (String k : a.keySet())
        assertArrayEquals(
            Zero3PrefetchTest.floats(a.get(k).grad()),
            Zero3PrefetchTest.floats(b.get(k).grad()),
            0f,
            k);
    }
  }
}
