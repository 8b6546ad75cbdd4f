package dev.hanlin.torch.fused;

import static dev.hanlin.torch.fused.Close.check;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Each CUDA attention kernel of {@link Sdpa} (FlashAttention-2, cuDNN, memory-efficient) in bf16
 * against autograd of float32 {@code scaled_dot_product_attention}: causal grouped-query heads laid
 * out as the model makes them, (B, T, H, D) transposed to (B, H, T, D), and the output's gradient
 * in that layout too. Within 2e-2 of the largest value (bf16). On the device: bench/gpu-kernels.sh.
 */
@Tag("gpu")
class SdpaGpuTest {
  @BeforeAll
  static void cuda() {
    Assumptions.assumeTrue(Torch.cudaAvailable(), "no CUDA");
  }

  @ParameterizedTest
  @EnumSource(names = {"CUDA_FLASH", "CUDA_CUDNN", "CUDA_EFFICIENT"})
  void causalGroupedQueryAttentionMatchesFloat32Autograd(Sdpa.Kernel kernel) {
    try (Scope s = Scope.open()) {
      Device dev = Device.cuda(0);
      Generator g = Generator.cpu(7);
      long b = 2, h = 8, kv = 2, t = 256, hd = 64;
      Tensor q = heads(g, b, t, h, hd, dev), k = heads(g, b, t, kv, hd, dev);
      Tensor v = heads(g, b, t, kv, hd, dev), dy = heads(g, b, t, h, hd, dev);
      Tensor qr = q.to(DType.F32).detach().requiresGrad(true);
      Tensor kr = k.to(DType.F32).detach().requiresGrad(true);
      Tensor vr = v.to(DType.F32).detach().requiresGrad(true);
      Tensor want = Torch.scaledDotProductAttention(qr, repeat(kr, h), repeat(vr, h), true);
      want.backward(dy.to(DType.F32));
      boolean expand = kernel != Sdpa.Kernel.CUDA_FLASH;
      Sdpa.Saved sv = Sdpa.forward(q, k, v, null, kernel, expand);
      check(sv.out().to(DType.F32), want, 2e-2, kernel + " out");
      Tensor[] grads = Sdpa.backward(dy, q, k, v, null, sv);
      check(grads[0].to(DType.F32), qr.grad(), 2e-2, kernel + " dq");
      check(grads[1].to(DType.F32), kr.grad(), 2e-2, kernel + " dk");
      check(grads[2].to(DType.F32), vr.grad(), 2e-2, kernel + " dv");
    }
  }

  /** Key/value heads (B, KV, T, D) repeated to (B, H, T, D), each serving H/KV query heads. */
  private static Tensor repeat(Tensor x, long h) {
    long b = x.size(0), kv = x.size(1), t = x.size(2), d = x.size(3);
    return x.unsqueeze(2).expand(b, kv, h / kv, t, d).reshape(b, h, t, d);
  }

  /** (B, T, n, D) random bf16 on the GPU, seen as (B, n, T, D): the model's layout. */
  private static Tensor heads(Generator g, long b, long t, long n, long hd, Device dev) {
    return Torch.randn(g, DType.F32, Device.CPU, b, t, n, hd)
        .to(dev)
        .to(DType.BF16)
        .transpose(1, 2);
  }
}
