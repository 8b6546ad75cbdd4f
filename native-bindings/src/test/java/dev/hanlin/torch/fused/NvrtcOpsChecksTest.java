package dev.hanlin.torch.fused;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * NvrtcOps' argument checks and output shapes, which run before any launch, on the CPU through
 * {@link NvrtcOps#hostSideOnly} (the kernels' values are NvrtcOpsGpuTest's).
 */
class NvrtcOpsChecksTest {
  private final NvrtcOps ops = NvrtcOps.hostSideOnly(Device.CPU);

  private static Tensor t(DType d, long... shape) {
    return Torch.zeros(d, Device.CPU, shape);
  }

  private static void refused(String word, Executable call) {
    var e = assertThrows(IllegalArgumentException.class, call);
    assertTrue(e.getMessage().contains(word), e.getMessage());
  }

  @Test
  void outputsHaveTheShapesAndTypesOfTheOps() {
    try (Scope s = Scope.open()) {
      for (DType d : new DType[] {DType.F32, DType.BF16}) {
        Tensor x = t(d, 2, 3, 64), w = t(d, 64);
        var n = ops.rmsNorm(x, w, 1e-5);
        assertArrayEquals(new long[] {2, 3, 64}, n.y().shape());
        assertEquals(d, n.y().dtype());
        assertArrayEquals(new long[] {2, 3}, n.rstd().shape());
        assertEquals(DType.F32, n.rstd().dtype());
        var a = ops.addRmsNorm(x, x, w, 1e-5);
        assertArrayEquals(x.shape(), a.h().shape());
        var g = ops.rmsNormBackward(x, x, w, t(DType.F32, 2, 3));
        assertArrayEquals(x.shape(), g.dx().shape());
        assertEquals(DType.F32, g.dweight().dtype());
        assertArrayEquals(new long[] {64}, g.dweight().shape());
        // q as a transposed projection: any strided (B, H, T, D) view
        Tensor q = t(d, 2, 5, 4, 8).transpose(1, 2);
        Tensor r = ops.rope(q, t(DType.F32, 5, 8), t(DType.F32, 5, 8));
        assertArrayEquals(new long[] {2, 4, 5, 8}, r.shape());
        assertTrue(r.isContiguous());
        assertEquals(d, r.dtype());
        Tensor gate = t(d, 3, 37);
        assertArrayEquals(gate.shape(), ops.swiglu(gate, gate).shape());
        assertArrayEquals(gate.shape(), ops.swigluBackward(gate, gate, gate).dup().shape());
        // gate/up as the column halves of one (N, 2I) tensor; the joined gradient (N, 2I)
        Tensor gu = t(d, 3, 74);
        Tensor half = gu.narrow(1, 0, 37), up = gu.narrow(1, 37, 37);
        assertArrayEquals(gate.shape(), ops.swiglu(half, up).shape());
        Tensor joined = ops.swigluBackwardJoined(gate, half, up);
        assertArrayEquals(new long[] {3, 74}, joined.shape());
        assertEquals(d, joined.dtype());
        assertArrayEquals(
            x.shape(), ops.rmsNormBackward(x, x, w, t(DType.F32, 2, 3), x).dx().shape());
        // q (4 heads) and k (2) as views of a (B, T, (4+2+2)·8) projection; rows (B·T, 64)
        Tensor qkv = t(d, 2, 5, 64);
        Tensor qh = qkv.narrow(2, 0, 32).view(2, 5, 4, 8).transpose(1, 2);
        Tensor kh = qkv.narrow(2, 32, 16).view(2, 5, 2, 8).transpose(1, 2);
        var rot = ops.ropeQk(qh, kh, t(DType.F32, 5, 8), t(DType.F32, 5, 8));
        assertArrayEquals(new long[] {2, 4, 5, 8}, rot.q().shape());
        assertArrayEquals(new long[] {2, 2, 5, 8}, rot.k().shape());
        assertEquals(d, rot.k().dtype());
        Tensor rows = ops.ropeQkvBackward(qh, kh, kh, t(DType.F32, 5, 8), t(DType.F32, 5, 8));
        assertArrayEquals(new long[] {10, 64}, rows.shape());
        var ce = ops.crossEntropy(t(d, 4, 11), t(DType.I64, 4), 1.0);
        assertArrayEquals(new long[] {4, 11}, ce.dlogits().shape());
        assertEquals(d, ce.dlogits().dtype());
      }
    }
  }

  @Test
  void badArgumentsAreRefusedByName() {
    try (Scope s = Scope.open()) {
      Tensor x = t(DType.F32, 4, 64), w = t(DType.F32, 64);
      refused("weight", () -> ops.rmsNorm(x, t(DType.BF16, 64), 1e-5));
      refused("weight", () -> ops.rmsNorm(x, t(DType.F32, 63), 1e-5));
      refused(
          "x must be contiguous", () -> ops.rmsNorm(t(DType.F32, 64, 4).transpose(0, 1), w, 1e-5));
      refused("float32 or bfloat16", () -> ops.rmsNorm(t(DType.F16, 4, 64), w, 1e-5));
      refused("delta", () -> ops.addRmsNorm(x, t(DType.F32, 4, 32), w, 1e-5));
      refused("rstd", () -> ops.rmsNormBackward(x, x, w, t(DType.F32, 3)));
      refused("up", () -> ops.swiglu(x, t(DType.BF16, 4, 64)));
      refused("dy", () -> ops.swigluBackward(t(DType.F32, 4, 63), x, x));
      refused("dy", () -> ops.swigluBackwardJoined(t(DType.F32, 4, 63), x, x));
      refused("residual", () -> ops.rmsNormBackward(x, x, w, t(DType.F32, 4), t(DType.F32, 4, 63)));
      Tensor q4 = t(DType.F32, 1, 2, 5, 8);
      Tensor cs = t(DType.F32, 5, 8);
      refused("k", () -> ops.ropeQk(q4, t(DType.F32, 1, 2, 6, 8), cs, cs));
      refused("dv", () -> ops.ropeQkvBackward(q4, q4, t(DType.F32, 1, 1, 5, 8), cs, cs));
      refused("cos", () -> ops.rope(t(DType.F32, 1, 2, 5, 8), t(DType.F32, 4, 8), w));
      refused("even", () -> ops.rope(t(DType.F32, 1, 2, 5, 7), t(DType.F32, 5, 7), w));
      refused("labels", () -> ops.crossEntropy(x, t(DType.I32, 4), 1.0));
      refused("labels", () -> ops.crossEntropy(x, t(DType.I64, 3), 1.0));
      refused("(N, V)", () -> ops.crossEntropy(t(DType.F32, 2, 2, 64), t(DType.I64, 4), 1.0));
    }
  }
}
