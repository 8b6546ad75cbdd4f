package dev.hanlin.torch.fused;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.List;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The checks of a {@link BlockOps} implementation against the plain libtorch expressions it
 * replaces; {@link NvrtcOpsGpuTest} runs them on the GPU kernels, {@link KernelFormulasTest} on the
 * kernels' formulas written as libtorch ops on the CPU.
 *
 * <p>Each fused kernel against the plain libtorch expression it replaces (HF's Llama), values and
 * gradients, on the GPU; the gradients of the reference come from libtorch's autograd, so they
 * check the hand-derived backward formulas too. Tolerances, as {@code |a - e| <= rtol * |e| +
 * atol}: float32 rtol 1e-5, atol 1e-5 (1e-4 for sums over rows and the loss); bfloat16 rtol 1/64
 * (two bf16 steps: the kernels round where libtorch rounds, so only a reduction order that moves a
 * float32 statistic across a rounding boundary differs) and atol 1e-2 of the tensor's largest
 * magnitude. Runs on the device through the JUnit console launcher (bench/gpu-kernels.sh).
 */
abstract class BlockOpsCheck {
  static Device dev;
  static BlockOps ops;

  enum Prec {
    F32(DType.F32, 1e-5, 1e-5),
    BF16(DType.BF16, 1.0 / 64, 1e-2);

    final DType dtype;
    final double rtol;
    final double atolRel;

    Prec(DType dtype, double rtol, double atolRel) {
      this.dtype = dtype;
      this.rtol = rtol;
      this.atolRel = atolRel;
    }
  }

  static Tensor randn(long seed, DType dtype, long... shape) {
    return Torch.randn(Generator.cpu(seed), dtype, dev, shape);
  }

  /** Asserts {@code |a - e| <= rtol |e| + atol}, atol relative to e's largest magnitude. */
  static void close(String what, Tensor actual, Tensor expected, double rtol, double atolRel) {
    assertEquals(
        List.of(toList(expected.shape())), List.of(toList(actual.shape())), what + " shape");
    Tensor a = actual.toFloat(), e = expected.toFloat();
    double scale = e.abs().max().item();
    double atol = atolRel * Math.max(scale, 1e-30);
    Tensor diff = a.sub(e).abs();
    double worst = diff.sub(e.abs().mul(rtol)).max().item();
    double maxDiff = diff.max().item();
    assertTrue(
        worst <= atol && !Double.isNaN(worst),
        what + ": max |diff| " + maxDiff + " exceeds rtol " + rtol + " + atol " + atol);
  }

  static void close(String what, Tensor a, Tensor e, Prec p) {
    close(what, a, e, p.rtol, p.atolRel);
  }

  private static List<Long> toList(long[] s) {
    return java.util.Arrays.stream(s).boxed().toList();
  }

  // ---- the references: plain libtorch, HF's Llama ----

  static Tensor refNorm(Tensor x, Tensor w, double eps) {
    Tensor xf = x.toFloat();
    Tensor rstd = xf.mul(xf).mean(-1, true).add(eps).rsqrt();
    return w.mul(xf.mul(rstd).to(x.dtype()));
  }

  static Tensor rotateHalf(Tensor x) {
    long h = x.size(-1) / 2;
    return Torch.cat(List.of(x.narrow(-1, h, h).neg(), x.narrow(-1, 0, h)), -1);
  }

  static Tensor refRope(Tensor x, Tensor cos, Tensor sin) {
    return x.mul(cos).add(rotateHalf(x).mul(sin));
  }

  @ParameterizedTest
  @EnumSource(Prec.class)
  void rmsNormAndItsBackward(Prec p) {
    // 1001: rows of no whole 16-byte vectors (the kernels' element path); the others vectors
    for (long c : new long[] {2048, 1000, 8192, 1001}) {
      try (Scope s = Scope.open()) {
        long n =
            c == 2048 ? 1500 : 96; // 1500 rows: 3 a block in the backward, the last block short
        Tensor x = randn(1, p.dtype, n, c).mul(3).requiresGrad(true);
        Tensor w = randn(2, p.dtype, c).mul(0.1).add(1).requiresGrad(true);
        Tensor dy = randn(3, p.dtype, n, c);
        var got = ops.rmsNorm(x.detach(), w.detach(), 1e-5);
        Tensor want = refNorm(x, w, 1e-5);
        close("rmsNorm y C=" + c, got.y(), want, p);
        Tensor xf = x.detach().toFloat();
        close("rstd C=" + c, got.rstd(), xf.mul(xf).mean(-1, false).add(1e-5).rsqrt(), 1e-5, 1e-6);
        want.backward(dy);
        var g = ops.rmsNormBackward(dy, x.detach(), w.detach(), got.rstd());
        close("rmsNorm dx C=" + c, g.dx(), x.grad(), p);
        assertEquals(DType.F32, g.dweight().dtype());
        close("rmsNorm dweight C=" + c, g.dweight(), w.grad(), p.rtol * 4, p.atolRel * 10);
        // the residual stream's gradient added in the same call: residual + dx
        Tensor res = randn(15, p.dtype, n, c);
        var gr = ops.rmsNormBackward(dy, x.detach(), w.detach(), got.rstd(), res);
        close("rmsNorm dx + residual C=" + c, gr.dx(), res.add(x.grad().to(p.dtype)), p);
        close("rmsNorm dweight (residual) C=" + c, gr.dweight(), g.dweight(), 1e-6, 1e-6);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(Prec.class)
  void addRmsNorm(Prec p) {
    try (Scope s = Scope.open()) {
      long n = 64, c = 2048;
      Tensor x = randn(4, p.dtype, 2, n / 2, c);
      Tensor d = randn(5, p.dtype, 2, n / 2, c);
      Tensor w = randn(6, p.dtype, c);
      var got = ops.addRmsNorm(x, d, w, 1e-6);
      Tensor h = x.add(d);
      assertEquals(0.0, got.h().toFloat().sub(h.toFloat()).abs().max().item(), "h = x + delta");
      close("addRmsNorm y", got.y(), refNorm(h, w, 1e-6), p);
      assertEquals(List.of(2L, 32L), toList(got.rstd().shape()));
    }
  }

  @ParameterizedTest
  @EnumSource(Prec.class)
  void ropeOnTransposedViewsWithPlainAndPackedTables(Prec p) {
    // the second shape: T*D/2 not a multiple of the block, head dim 128
    for (long[] shape : new long[][] {{2, 4, 64, 64}, {2, 3, 37, 128}})
      try (Scope s = Scope.open()) {
        long b = shape[0], h = shape[1], t = shape[2], d = shape[3];
        // q as the model makes it: (B, T, H, D) from the projection, viewed as (B, H, T, D)
        Tensor q = randn(7, p.dtype, b, t, h, d).transpose(1, 2).requiresGrad(true);
        Tensor ang = randn(8, DType.F32, t, d);
        for (boolean packed : new boolean[] {false, true}) {
          Tensor cos = ang.cos().to(p.dtype), sin = ang.sin().to(p.dtype);
          if (packed) { // (B, 1, T, D), different per row as for packed samples
            cos = Torch.stack(List.of(cos, cos.narrow(0, 0, t).neg()), 0).unsqueeze(1);
            sin = Torch.stack(List.of(sin, sin.mul(0.5)), 0).unsqueeze(1);
          }
          Tensor want = refRope(q, cos, sin);
          close("rope packed=" + packed, ops.rope(q.detach(), cos, sin), want, p);
          Tensor dy = randn(9, p.dtype, b, h, t, d);
          q.clearGrad();
          want.backward(dy);
          close("ropeBackward packed=" + packed, ops.ropeBackward(dy, cos, sin), q.grad(), p);
          // a transposed gradient view works too
          Tensor dyT = dy.transpose(1, 2).contiguous().transpose(1, 2);
          close("ropeBackward strided", ops.ropeBackward(dyT, cos, sin), q.grad(), p);
        }
      }
  }

  @ParameterizedTest
  @EnumSource(Prec.class)
  void swigluAndItsBackward(Prec p) {
    for (long[] shape : new long[][] {{48, 5632}, {7, 333}})
      try (Scope s = Scope.open()) {
        Tensor g = randn(10, p.dtype, shape).mul(3).requiresGrad(true);
        Tensor u = randn(11, p.dtype, shape).requiresGrad(true);
        Tensor want = Torch.silu(g).mul(u);
        close("swiglu", ops.swiglu(g.detach(), u.detach()), want, p);
        Tensor dy = randn(12, p.dtype, shape);
        want.backward(dy);
        var got = ops.swigluBackward(dy, g.detach(), u.detach());
        close("swiglu dgate", got.dgate(), g.grad(), p);
        close("swiglu dup", got.dup(), u.grad(), p);
      }
  }

  @ParameterizedTest
  @EnumSource(Prec.class)
  void ropeOfQAndKTogetherAndTheBackwardAsProjectionRows(Prec p) {
    // heads of 64 and 128 (16-byte vector path), GQA (KV < H) and not, T not a multiple of the
    // block; heads of 12 (D/2 = 6: the element path)
    for (long[] shape : new long[][] {{2, 4, 2, 64, 64}, {2, 3, 3, 37, 128}, {2, 2, 1, 5, 12}})
      try (Scope s = Scope.open()) {
        long b = shape[0], h = shape[1], kv = shape[2], t = shape[3], d = shape[4];
        long w = (h + 2 * kv) * d;
        // q/k/v as the fused projection makes them: column slices of (B, T, (H+2KV)·D) rows
        Tensor qkv = randn(16, p.dtype, b, t, w);
        Tensor q = qkv.narrow(2, 0, h * d).view(b, t, h, d).transpose(1, 2).requiresGrad(true);
        Tensor k = qkv.narrow(2, h * d, kv * d).view(b, t, kv, d).transpose(1, 2);
        k = k.requiresGrad(true);
        Tensor ang = randn(17, DType.F32, t, d);
        for (boolean packed : new boolean[] {false, true}) {
          Tensor cos = ang.cos().to(p.dtype), sin = ang.sin().to(p.dtype);
          if (packed) {
            cos = Torch.stack(List.of(cos, cos.neg()), 0).unsqueeze(1);
            sin = Torch.stack(List.of(sin, sin.mul(0.5)), 0).unsqueeze(1);
          }
          Tensor wantQ = refRope(q, cos, sin), wantK = refRope(k, cos, sin);
          var got = ops.ropeQk(q.detach(), k.detach(), cos, sin);
          close("ropeQk q packed=" + packed, got.q(), wantQ, p);
          close("ropeQk k packed=" + packed, got.k(), wantK, p);
          // gradients as attention returns them: (B, T, heads, D) memory viewed as (B, heads, T, D)
          Tensor dq = randn(18, p.dtype, b, t, h, d).transpose(1, 2);
          Tensor dk = randn(19, p.dtype, b, t, kv, d).transpose(1, 2);
          Tensor dv = randn(20, p.dtype, b, kv, t, d); // and a contiguous one
          q.clearGrad();
          k.clearGrad();
          wantQ.backward(dq);
          wantK.backward(dk);
          Tensor rows = ops.ropeQkvBackward(dq, dk, dv, cos, sin);
          assertEquals(List.of(b * t, w), toList(rows.shape()), "rows shape");
          Tensor r3 = rows.view(b, t, w);
          close(
              "ropeQkvBackward dq packed=" + packed,
              r3.narrow(2, 0, h * d).view(b, t, h, d).transpose(1, 2),
              q.grad(),
              p);
          close(
              "ropeQkvBackward dk packed=" + packed,
              r3.narrow(2, h * d, kv * d).view(b, t, kv, d).transpose(1, 2),
              k.grad(),
              p);
          Tensor gotV = r3.narrow(2, (h + kv) * d, kv * d).view(b, t, kv, d).transpose(1, 2);
          assertEquals(0.0, gotV.toFloat().sub(dv.toFloat()).abs().max().item(), "dv copied");
        }
      }
  }

  @ParameterizedTest
  @EnumSource(Prec.class)
  void swigluOnColumnSlicesOfTheFusedGateUp(Prec p) {
    // I = 5632 (TinyLlama; 16-byte vectors) and 333 (element path)
    for (long[] shape : new long[][] {{48, 5632}, {7, 333}})
      try (Scope s = Scope.open()) {
        long n = shape[0], i = shape[1];
        Tensor gu = randn(21, p.dtype, n, 2 * i).mul(2); // the fused GEMM's (N, 2I) output
        Tensor g = gu.narrow(1, 0, i).requiresGrad(true); // leaf views: gradients of the slices
        Tensor u = gu.narrow(1, i, i).requiresGrad(true);
        Tensor want = Torch.silu(g).mul(u);
        Tensor y = ops.swiglu(gu.narrow(1, 0, i), gu.narrow(1, i, i));
        assertTrue(y.raw().is_contiguous(), "contiguous output");
        close("swiglu strided I=" + i, y, want, p);
        Tensor dy = randn(22, p.dtype, n, i);
        want.backward(dy);
        Tensor joined = ops.swigluBackwardJoined(dy, gu.narrow(1, 0, i), gu.narrow(1, i, i));
        assertEquals(List.of(n, 2 * i), toList(joined.shape()), "joined shape");
        close("swiglu joined dgate I=" + i, joined.narrow(1, 0, i), g.grad(), p);
        close("swiglu joined dup I=" + i, joined.narrow(1, i, i), u.grad(), p);
        // the separate-output backward on the same slices agrees with the joined one
        var sep = ops.swigluBackward(dy, gu.narrow(1, 0, i), gu.narrow(1, i, i));
        close("swiglu dgate = joined I=" + i, sep.dgate(), joined.narrow(1, 0, i), 0, 0);
        close("swiglu dup = joined I=" + i, sep.dup(), joined.narrow(1, i, i), 0, 0);
      }
  }

  @ParameterizedTest
  @EnumSource(Prec.class)
  void crossEntropyLossAndGradient(Prec p) {
    for (long v : new long[] {32000, 1000, 999}) {
      try (Scope s = Scope.open()) {
        long n = 40;
        Tensor logits = randn(13, p.dtype, n, v).mul(4).requiresGrad(true);
        long[] lab = new long[(int) n];
        java.util.Random r = new java.util.Random(14);
        for (int i = 0; i < n; i++) lab[i] = i % 7 == 3 ? Torch.IGNORE_INDEX : r.nextInt((int) v);
        Tensor labels = Torch.fromLongs(lab, n).to(dev);
        double scale = 1.0 / 33;
        Tensor want = Torch.crossEntropySum(logits.toFloat(), labels);
        want.mul(scale).backward();
        var got = ops.crossEntropy(logits.detach(), labels, scale);
        assertEquals(0, got.lossSum().dim());
        assertEquals(DType.F32, got.lossSum().dtype());
        close("loss V=" + v, got.lossSum(), want, 1e-5, 1e-5);
        close("dlogits V=" + v, got.dlogits(), logits.grad(), p.rtol, p.atolRel);
        // ignored rows are exactly zero
        Tensor row3 = got.dlogits().select(0, 3);
        assertEquals(0.0, row3.toFloat().abs().max().item());
      }
    }
  }

  static {
    torch.get_num_threads();
  }
}
