package dev.hanlin.train.explicit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.LoraAdapters;
import dev.hanlin.model.LoraConfig;
import dev.hanlin.torch.Autocast;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * LoRA dropout of the explicit pass on CUDA, where dropout is libtorch's fused kernel: the draw is
 * bitwise the op's output from the same seed, its mask backward within one rounding of {@code
 * native_dropout_backward} (autograd's; it prints how many differ: expected none), the generator
 * ends where the op leaves it, and the backward added to a gradient in one pass ({@code
 * addBackward}) within one rounding of the add; float32 and bf16, at the 7B shapes' row widths
 * (4096, 11008) and an odd one. Then the whole parity model as the 7B LoRA run trains it (bf16
 * base, bf16 autocast, float32 adapters, dropout 0.05 on all seven projections), keeping and
 * recomputing: the generator ends where autograd's forward left it (the same draws), gradients
 * within 3e-2 (bf16; ExplicitGpuCheck measured 1.6e-2 without dropout), and a float32 base within
 * 1e-4. On the device: bench/gpu-loradrop.sh.
 */
@Tag("gpu")
class LoraDropoutGpuTest {
  private static Device dev;

  @BeforeAll
  static void cuda() {
    Assumptions.assumeTrue(Torch.cudaAvailable(), "no CUDA");
    dev = Device.cuda(0);
  }

  @Test
  void theDrawIsTheFusedOpsAndItsBackwardAutogradsBitwise() {
    long[][] shapes = {{2048, 4096}, {2048, 11008}, {37, 24}};
    for (DType dt : new DType[] {DType.F32, DType.BF16})
      for (long[] shape : shapes)
        for (double p : new double[] {0.05, 0.1}) {
          String what = dt + " " + shape[0] + "x" + shape[1] + " p=" + p;
          try (Scope s = Scope.open()) {
            Tensor x =
                Torch.randn(Generator.cpu(1), DType.F32, Device.CPU, shape).to(dev, dt, false);
            Tensor dy =
                Torch.randn(Generator.cpu(2), DType.F32, Device.CPU, shape).to(dev, dt, false);
            Torch.manualSeed(5);
            Tensor leaf = x.detach().requiresGrad(true);
            Tensor want = Torch.dropout(leaf, p, true);
            want.backward(dy);
            float[] wantNext = next();
            Torch.manualSeed(5);
            LoraDropout.Drawn d = LoraDropout.draw(x, p);
            assertArrayEquals(wantNext, next(), what + ": the generator ends where dropout's does");
            assertArrayEquals(want.toFloatArray(), d.dropped().toFloatArray(), what + " forward");
            // native_dropout_backward computes float(dy)·m·scale, rounded once; so does dy·m
            // (exact) then ·scale: bitwise if libtorch rounds the scalar as the kernel does
            float[] ref = leaf.grad().toFloatArray(), got = d.mask().backward(dy).toFloatArray();
            double ulp = dt == DType.BF16 ? 1.0 / 128 : 1.0 / (1 << 23);
            int differ = 0;
            for (int i = 0; i < ref.length; i++) {
              assertEquals(ref[i], got[i], ulp * Math.abs(ref[i]), what + " backward " + i);
              if (Float.floatToIntBits(ref[i]) != Float.floatToIntBits(got[i])) differ++;
            }
            System.out.printf(
                "%s: forward bitwise, backward %d of %d differ%n", what, differ, ref.length);
            // the backward added to a gradient in one pass: within one rounding of the add
            Tensor acc = x.copy();
            d.mask().addBackward(acc, dy);
            float[] sum = acc.toFloatArray(), want2 = x.add(d.mask().backward(dy)).toFloatArray();
            float[] xs = x.toFloatArray();
            for (int i = 0; i < sum.length; i++)
              assertEquals(
                  want2[i], sum[i], 2 * ulp * (Math.abs(xs[i]) + Math.abs(got[i])), what + " add");
          }
        }
  }

  @Test
  void theModelAsThe7bLoraRunTrainsItDrawsAutogradsMasks() throws Exception {
    for (boolean bf16 : new boolean[] {true, false})
      for (boolean recompute : new boolean[] {false, true}) {
        LlamaModel base = HfCheckpoint.load(Models.dir().resolve("gqa"), DType.F32, dev);
        if (bf16) base = base.withDtype(DType.BF16);
        LoraAdapters ad =
            LoraAdapters.init(base, new LoraConfig(4, 8.0, 0.05, null, null, null), 7);
        try (Scope s = Scope.open();
            Grad.Guard g = Grad.noGrad()) { // B non-zero, so that A's gradients show
          for (var e : ad.weights().entrySet())
            if (e.getKey().contains("lora_B"))
              e.getValue()
                  .copy_(
                      Torch.randn(Generator.cpu(3), DType.F32, Device.CPU, e.getValue().shape())
                          .mul(0.1)
                          .to(dev));
        }
        for (Tensor w : ad.weights().values()) w.requiresGrad(true);
        LlamaModel m = base.withLora(ad);
        Tensor ids =
            Torch.fromLongs(new long[] {5, 9, 33, 7, 81, 12, 3, 44, 100, 2, 60, 61}, 2, 6).to(dev);
        Tensor targets =
            Torch.fromLongs(new long[] {9, 33, 7, 81, 12, -100, 44, 100, 2, 60, 61, 70}, 12)
                .to(dev);
        String what = (bf16 ? "bf16" : "fp32") + " recompute=" + recompute;
        Torch.manualSeed(17);
        try (Scope s = Scope.open();
            Grad.Guard ac = bf16 ? Autocast.enable(dev, DType.BF16) : () -> {}) {
          Tensor logits = m.forward(ids, null);
          Torch.crossEntropySum(logits.reshape(-1, logits.size(-1)).toFloat(), targets)
              .div(11)
              .backward();
        }
        float[] wantNext = next();
        Map<String, Tensor> want = Models.takeGrads(ad.weights());
        Torch.manualSeed(17);
        try (Scope s = Scope.open();
            Grad.Guard ac = bf16 ? Autocast.enable(dev, DType.BF16) : () -> {}) {
          ExplicitBackward.run(m, ids, null, null, targets, 1 / 11.0, recompute, null);
        }
        assertArrayEquals(wantNext, next(), what + ": the same draws");
        Map<String, Tensor> got = Models.takeGrads(ad.weights());
        assertEquals(want.keySet(), got.keySet(), what);
        for (var e : want.entrySet())
          BlockPassTest.check(
              got.get(e.getKey()), e.getValue(), bf16 ? 3e-2 : 1e-4, what + " " + e.getKey());
      }
  }

  /** What the default CUDA generator draws next. */
  private static float[] next() {
    try (Scope s = Scope.open()) {
      return Torch.dropout(Torch.ones(DType.F32, dev, 64), 0.5, true).toFloatArray();
    }
  }
}
