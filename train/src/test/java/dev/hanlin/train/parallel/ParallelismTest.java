package dev.hanlin.train.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Dist;
import dev.hanlin.torch.dist.Group;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The Reducer's bucket plan, and ZeRO-2's gradient reduce on two in-process ranks. */
class ParallelismTest {
  @Test
  void bucketsFollowBackwardOrderAndTheCaps() {
    // 4 parameters of 400 bytes: the first bucket closes at 400 bytes, the others at 800
    List<Tensor> ps = List.of(t(), t(), t(), t());
    assertEquals(List.of(List.of(3), List.of(2, 1), List.of(0)), Ddp.buckets(ps, 400, 800));
  }

  private static Tensor t() {
    return Torch.zeros(DType.F32, Device.CPU, 100);
  }

  /**
   * ZeRO-2's parts on two ranks (threads of this JVM, Gloo over loopback): gradients of two
   * micro-batches summed onto their owners and averaged, dropped elsewhere, and the norm over both
   * ranks' shares.
   */
  @Test
  void gradientsReduceOntoTheirOwnersAndTheNormSpansTheRanks() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      List<Future<float[][]>> ranks = new ArrayList<>();
      for (int r = 0; r < 2; r++) {
        Dist d = new Dist(r, r, 2, 2, "127.0.0.1", port);
        ranks.add(pool.submit(() -> zero2OnRank(d)));
      }
      float[][] r0 = ranks.get(0).get(60, TimeUnit.SECONDS);
      float[][] r1 = ranks.get(1).get(60, TimeUnit.SECONDS);
      // a (6 elements) is rank 0's, b (3) rank 1's; rank r's gradients are (r + 1) and 10 (r + 1)
      // in each of 2 micro-batches: means over the ranks of the sums, 3 and 30
      assertArrayEquals(filled(6, 3), r0[0]);
      assertNull(r0[1], "rank 0 dropped b's gradient");
      assertNull(r1[0], "rank 1 dropped a's gradient");
      assertArrayEquals(filled(3, 30), r1[1]);
      double norm = Math.sqrt(6 * 3 * 3 + 3 * 30 * 30); // of all the averaged gradients
      assertEquals(norm, r0[2][0], 1e-3);
      assertEquals(norm, r1[2][0], 1e-3);
    } finally {
      pool.shutdownNow();
    }
  }

  /** Rank {@code d}'s gradients of a and b after ZeRO-2's reduce, and the global norm. */
  private static float[][] zero2OnRank(Dist d) {
    try (Group g = Group.join(d, Device.CPU, Duration.ofSeconds(30));
        Scope s = Scope.open()) {
      Map<String, Tensor> params = new LinkedHashMap<>();
      params.put("a", Torch.zeros(DType.F32, Device.CPU, 6).requiresGrad(true));
      params.put("b", Torch.zeros(DType.F32, Device.CPU, 3).requiresGrad(true));
      Shards shards = Shards.of(params, d);
      assertEquals(d.rank() == 0, shards.owns("a"));
      for (int micro = 0; micro < 2; micro++) {
        double c = d.rank() + 1;
        params.get("a").mul(c).sum().add(params.get("b").mul(10 * c).sum()).backward();
        shards.reduceGrads(g, params, micro == 1);
      }
      Tensor ga = params.get("a").grad(), gb = params.get("b").grad();
      Tensor local = (ga != null ? ga : gb).pow(2).sum().pow(0.5); // each rank keeps one
      return new float[][] {
        ga == null ? null : ga.toFloatArray(),
        gb == null ? null : gb.toFloatArray(),
        Shards.globalNorm(g, local).toFloatArray()
      };
    }
  }

  private static float[] filled(int n, double v) {
    float[] f = new float[n];
    java.util.Arrays.fill(f, (float) v);
    return f;
  }
}
