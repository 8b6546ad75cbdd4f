package dev.hanlin.torch.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
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

/**
 * The identity read from torchrun's and SLURM's variables, the Reducer's bucket plan, and ZeRO-2's
 * gradient reduce on two in-process ranks.
 */
class DistTest {
  @Test
  void torchrunVariables() {
    Dist d =
        Dist.fromEnv(
            Map.of(
                "RANK", "5",
                "LOCAL_RANK", "1",
                "WORLD_SIZE", "8",
                "LOCAL_WORLD_SIZE", "4",
                "MASTER_ADDR", "10.0.0.7",
                "MASTER_PORT", "29501"));
    assertEquals(new Dist(5, 1, 8, 4, "10.0.0.7", 29501), d);
    assertFalse(d.isMain());
    assertTrue(d.isDistributed());
  }

  @Test
  void slurmVariablesWhenTorchrunsAreAbsent() {
    Dist d =
        Dist.fromEnv(
            Map.of(
                "SLURM_PROCID", "6",
                "SLURM_NTASKS", "8",
                "SLURM_LOCALID", "2",
                "SLURM_TASKS_PER_NODE", "4(x2)",
                "SLURM_JOB_NODELIST", "gpu[07-08],cpu1"));
    assertEquals(new Dist(6, 2, 8, 4, "gpu07", Dist.DEFAULT_PORT), d);
    assertEquals("node", Dist.firstHost("node"));
    assertEquals("a12", Dist.firstHost("a[12,15-16]"));
  }

  @Test
  void noVariablesIsOneProcessAndBadOnesAreNamed() {
    assertEquals(Dist.SINGLE, Dist.fromEnv(Map.of()));
    assertTrue(Dist.SINGLE.isMain());
    assertFalse(Dist.SINGLE.isDistributed());
    var e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Dist.fromEnv(Map.of("RANK", "x", "WORLD_SIZE", "2")));
    assertTrue(e.getMessage().contains("RANK=x"), e.getMessage());
    assertThrows(
        IllegalArgumentException.class, () -> Dist.fromEnv(Map.of("RANK", "2", "WORLD_SIZE", "2")));
  }

  @Test
  void bucketsFollowBackwardOrderAndTheCaps() {
    // 4 parameters of 400 bytes: the first bucket closes at 400 bytes, the others at 800
    List<Tensor> ps = List.of(t(), t(), t(), t());
    assertEquals(List.of(List.of(3), List.of(2, 1), List.of(0)), GradSync.buckets(ps, 400, 800));
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

  @Test
  void aSingleGroupIsANoOp() {
    try (Group g = Group.single()) {
      assertFalse(g.isDistributed());
      assertEquals(3.5, g.sum(3.5)[0]);
      assertTrue(g.any(true));
      g.barrier();
    }
  }
}
