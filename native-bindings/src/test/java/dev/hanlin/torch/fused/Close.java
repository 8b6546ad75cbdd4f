package dev.hanlin.torch.fused;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.Tensor;

/** Relative closeness of two tensors: {@code max|a − b| / max|b|}. */
final class Close {
  private Close() {}

  static double rel(Tensor a, Tensor b) {
    float[] x = a.toFloatArray(), y = b.toFloatArray();
    if (x.length != y.length) throw new AssertionError(x.length + " vs " + y.length + " elements");
    double diff = 0, scale = 0;
    for (int i = 0; i < x.length; i++) {
      diff = Math.max(diff, Math.abs(x[i] - y[i]));
      scale = Math.max(scale, Math.abs(y[i]));
    }
    return scale == 0 ? diff : diff / scale;
  }

  static void check(Tensor got, Tensor want, double tol, String what) {
    double r = rel(got, want);
    assertTrue(r <= tol, what + ": relative difference " + r + " > " + tol);
  }
}
