package dev.hanlin.torch.fused;

import static dev.hanlin.torch.fused.Close.check;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The split attention forward/backward (libtorch's CPU flash kernels through the dispatcher)
 * against autograd of {@code scaled_dot_product_attention} as the model calls it: causal and with a
 * packed-rows mask, grouped-query heads passed to the kernel as they are and expanded (as for the
 * CUDA memory-efficient kernel). float32 within 1e-5, bf16 within 2e-2 (as they are, the results
 * equal autograd's exactly: the same kernel).
 */
class SdpaTest {
  @ParameterizedTest
  @EnumSource(names = {"F32", "BF16"})
  void causalAndMaskedGroupedQueryAttentionMatchAutograd(DType d) {
    double tol = d == DType.F32 ? 1e-5 : 2e-2;
    try (Scope s = Scope.open()) {
      Generator g = Generator.cpu(5);
      long b = 2, h = 4, kv = 2, t = 6, hd = 8;
      Tensor q = Torch.randn(g, DType.F32, Device.CPU, b, h, t, hd).to(d);
      Tensor k = Torch.randn(g, DType.F32, Device.CPU, b, kv, t, hd).to(d);
      Tensor v = Torch.randn(g, DType.F32, Device.CPU, b, kv, t, hd).to(d);
      Tensor dy = Torch.randn(g, DType.F32, Device.CPU, b, h, t, hd).to(d);
      // row 0: samples [0, 3) and [3, 6); row 1: one sample
      Tensor pos = Torch.fromLongs(new long[] {0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 4, 5}, b, t);
      Tensor seg = Torch.fromLongs(new long[] {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, b, t);
      Tensor mask =
          seg.unsqueeze(2).eq(seg.unsqueeze(1)).and(pos.unsqueeze(2).ge(pos.unsqueeze(1)));
      mask = mask.unsqueeze(1); // (B, 1, T, T)
      for (boolean packed : new boolean[] {false, true}) {
        Tensor qr = q.detach().requiresGrad(true), kr = k.detach().requiresGrad(true);
        Tensor vr = v.detach().requiresGrad(true);
        Tensor want =
            packed
                ? Torch.scaledDotProductAttention(qr, kr, vr, mask)
                : Torch.scaledDotProductAttention(qr, kr, vr, true);
        want.backward(dy);
        Tensor bias = packed ? Sdpa.bias(mask, d) : null;
        for (boolean expand : new boolean[] {false, true}) {
          Sdpa.Saved sv =
              expand
                  ? Sdpa.forward(q, k, v, bias, Sdpa.Kernel.CPU_FLASH, true)
                  : Sdpa.forward(q, k, v, bias);
          String what = d + (packed ? " packed " : " causal ") + (expand ? "expanded " : "");
          check(sv.out(), want, tol, what + "out");
          Tensor[] grads = Sdpa.backward(dy, q, k, v, bias, sv);
          check(grads[0], qr.grad(), tol, what + "dq");
          check(grads[1], kr.grad(), tol, what + "dk");
          check(grads[2], vr.grad(), tol, what + "dv");
        }
      }
    }
  }
}
