package dev.hanlin.train.explicit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.TransformerBlock;
import dev.hanlin.torch.Autocast;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.fused.Kernels;
import dev.hanlin.torch.fused.ReferenceOps;
import dev.hanlin.torch.fused.Sdpa;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * One block's explicit forward and backward against libtorch autograd of the model's own {@code
 * TransformerBlock.forward}: the output, the input's gradient and every parameter's gradient,
 * causal and packed rows, grouped-query (gqa: 8 heads, 2 KV) and plain (mha) heads, LoRA, bf16.
 * Tolerances (max |a−b| / max |b|): float32 2e-6 (measured: at most 6.7e-7); a bf16 model and bf16
 * autocast 2e-2 (measured: at most 7.3e-3, about two bf16 ulps: the explicit pass rounds at the
 * same points but computes its elementwise backwards in float32 and sums in other orders).
 */
class BlockPassTest {
  private static final long B = 2, T = 6;

  @Test
  void float32CausalAndPackedGroupedAndPlainHeads() throws Exception {
    for (String name : new String[] {"gqa", "mha"})
      for (boolean packed : new boolean[] {false, true}) {
        LlamaModel m = Models.trainable(name, DType.F32);
        compare(m, packed, DType.F32, false, 2e-6, name + (packed ? " packed" : " causal"));
      }
  }

  @Test
  void loraAdaptersOnSomeProjections() throws Exception {
    for (boolean packed : new boolean[] {false, true})
      compare(Models.withLora(), packed, DType.F32, false, 2e-6, "lora packed=" + packed);
  }

  @Test
  void bf16ModelAndBf16Autocast() throws Exception {
    compare(Models.trainable("gqa", DType.BF16), true, DType.BF16, false, 2e-2, "bf16 model");
    compare(Models.trainable("gqa", DType.F32), false, DType.BF16, true, 2e-2, "bf16 autocast");
  }

  private static void compare(
      LlamaModel m, boolean packed, DType cd, boolean autocast, double tol, String what) {
    TransformerBlock block = m.layers().get(1);
    Map<String, Tensor> params = Models.trained(m);
    try (Scope s = Scope.open()) {
      Generator g = Generator.cpu(9);
      long c = m.config().hiddenSize();
      Tensor x = Torch.randn(g, DType.F32, Device.CPU, B, T, c).to(m.dtype());
      Tensor dy = Torch.randn(g, DType.F32, Device.CPU, B, T, c).to(m.dtype());
      Tensor pos =
          packed ? Torch.fromLongs(new long[] {0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 4, 5}, B, T) : null;
      Tensor seg =
          packed ? Torch.fromLongs(new long[] {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, B, T) : null;
      LlamaModel.Positions p = m.positions(0, T, pos, seg, m.dtype(), Device.CPU);
      Tensor xr = x.detach().requiresGrad(true);
      Tensor want;
      try (Grad.Guard ac = autocast ? Autocast.enable(Device.CPU, DType.BF16) : () -> {}) {
        want = block.forward(xr, p.cos(), p.sin(), null, p.mask());
        want.backward(dy);
      }
      Tensor wantDx = xr.grad();
      Map<String, Tensor> wantGrads = Models.takeGrads(params);
      assertTrue(wantGrads.size() > 0, what);
      var ctx =
          new BlockPass.Context(
              p.cos(), p.sin(), p.mask() == null ? null : Sdpa.bias(p.mask(), cd));
      Tensor out, dx;
      try (Grad.Guard ng = Grad.noGrad();
          Grad.Guard ac = autocast ? Autocast.enable(Device.CPU, DType.BF16) : () -> {};
          Grad.Guard off = Kernels.suspendAutocast(Device.CPU)) {
        BlockPass pass = new BlockPass(block, m.config(), ReferenceOps.reference(), cd);
        BlockActivations a = pass.forward(x, ctx);
        out = a.out();
        dx = pass.backward(a, dy, ctx);
      }
      Map<String, Tensor> got = Models.takeGrads(params);
      check(out, want, tol, what + " output");
      check(dx, wantDx, tol, what + " dx");
      assertEquals(wantGrads.keySet(), got.keySet(), what + ": the same weights get gradients");
      for (var e : wantGrads.entrySet())
        check(got.get(e.getKey()), e.getValue(), tol, what + " " + e.getKey());
    }
  }

  static void check(Tensor got, Tensor want, double tol, String what) {
    float[] x = got.toFloatArray(), y = want.toFloatArray();
    assertEquals(y.length, x.length, what);
    double diff = 0, scale = 0;
    for (int i = 0; i < x.length; i++) {
      diff = Math.max(diff, Math.abs(x[i] - y[i]));
      scale = Math.max(scale, Math.abs(y[i]));
    }
    assertTrue(scale > 0, what + " is all zero");
    assertTrue(diff / scale <= tol, what + ": relative difference " + diff / scale + " > " + tol);
  }
}
