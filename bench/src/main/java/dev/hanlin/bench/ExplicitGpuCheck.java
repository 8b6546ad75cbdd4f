package dev.hanlin.bench;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Autocast;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.train.explicit.ExplicitBackward;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Issue 16 on a device: the explicit backward (libtorch's CUDA flash or memory-efficient attention
 * kernels through the dispatcher, the reference block ops) against autograd's backward of the
 * model's forward, on the tiny parity models: float32, a bf16 model and bf16 autocast; causal and
 * packed rows; keeping and recomputing activations. Prints the loss's and the worst gradient's
 * relative difference per case ({@code max|a−b| / max|b|}); on the CPU (argument {@code cpu})
 * float32 ≤ 1.3e-6, bf16 ≤ 1.6e-2 (2026-12-02).
 */
public final class ExplicitGpuCheck {
  private static final double PER_RANK = 11;

  public static void main(String[] args) throws Exception {
    Path parity = Path.of(args[0]);
    Device dev = Device.parse(args.length > 1 ? args[1] : "cuda");
    Tensor ids = Torch.fromLongs(new long[] {5, 9, 33, 7, 81, 12, 3, 44, 100, 2, 60, 61}, 2, 6);
    ids = ids.to(dev).retain();
    Tensor targets =
        Torch.fromLongs(new long[] {9, 33, 7, 81, 12, -100, 44, 100, 2, 60, 61, 70}, 12)
            .to(dev)
            .retain();
    Tensor pos = Torch.fromLongs(new long[] {0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 4, 5}, 2, 6);
    Tensor seg = Torch.fromLongs(new long[] {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, 2, 6);
    pos = pos.to(dev).retain();
    seg = seg.to(dev).retain();
    for (String name : new String[] {"gqa", "tied", "mha"})
      for (String mode : new String[] {"fp32", "bf16-model", "autocast"})
        for (boolean packed : new boolean[] {false, true})
          for (boolean recompute : new boolean[] {false, true}) {
            LlamaModel m = HfCheckpoint.load(parity.resolve(name), DType.F32, dev);
            if (mode.equals("bf16-model")) m = m.withDtype(DType.BF16);
            for (Tensor w : m.weights().values()) w.requiresGrad(true);
            Tensor p = packed ? pos : null, s = packed ? seg : null;
            double want, got;
            try (Scope sc = Scope.open();
                Grad.Guard ac =
                    mode.equals("autocast") ? Autocast.enable(dev, DType.BF16) : () -> {}) {
              Tensor logits = packed ? m.forwardPacked(ids, p, s) : m.forward(ids, null);
              Tensor loss =
                  Torch.crossEntropySum(logits.reshape(-1, logits.size(-1)).toFloat(), targets);
              loss.div(PER_RANK).backward();
              want = loss.item();
            }
            Map<String, float[]> a = grads(m);
            try (Scope sc = Scope.open();
                Grad.Guard ac =
                    mode.equals("autocast") ? Autocast.enable(dev, DType.BF16) : () -> {}) {
              got =
                  ExplicitBackward.run(m, ids, p, s, targets, 1 / PER_RANK, recompute, null).item();
            }
            Map<String, float[]> b = grads(m);
            String worst = "";
            double rel = 0;
            for (var e : a.entrySet()) {
              double r = rel(b.get(e.getKey()), e.getValue());
              if (r > rel) {
                rel = r;
                worst = e.getKey();
              }
            }
            System.out.printf(
                "RESULT explicit-gpu %s %s packed=%s recompute=%s loss_rel=%.2e grad_rel=%.2e (%s)%n",
                name, mode, packed, recompute, Math.abs(got - want) / want, rel, worst);
          }
  }

  private static Map<String, float[]> grads(LlamaModel m) {
    Map<String, float[]> g = new LinkedHashMap<>();
    for (var e : m.weights().entrySet()) {
      Tensor gr = e.getValue().grad();
      g.put(e.getKey(), gr == null ? null : gr.toFloatArray());
      e.getValue().clearGrad();
    }
    return g;
  }

  private static double rel(float[] got, float[] want) {
    if (got == null || want == null) return got == want ? 0 : Double.POSITIVE_INFINITY;
    double d = 0, s = 0;
    for (int i = 0; i < want.length; i++) {
      d = Math.max(d, Math.abs(got[i] - want[i]));
      s = Math.max(s, Math.abs(want[i]));
    }
    return s == 0 ? d : d / s;
  }
}
