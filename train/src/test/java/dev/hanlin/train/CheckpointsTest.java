package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Cursor;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Dist;
import dev.hanlin.torch.dist.Group;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A save that fails half way, on any rank, leaves no folder behind and the earlier checkpoints
 * intact; sharded optimizer state is written and read back per rank.
 */
class CheckpointsTest {
  static LlamaModel tiny() {
    LlamaConfig c =
        new LlamaConfig(
            64,
            16,
            32,
            1,
            2,
            1,
            8,
            1e-5,
            10000,
            null,
            64,
            false,
            0.02,
            1,
            List.of(2),
            null,
            DType.F32,
            false,
            false);
    return LlamaModel.init(c, 1, DType.F32, Device.CPU);
  }

  @Test
  void failedSaveKeepsThePreviousCheckpoint(@TempDir Path out) throws Exception {
    LlamaModel m = tiny();
    Map<String, Tensor> rng = Map.of("cpu", Torch.cpuRngState().retain());
    Map<String, Tensor> opt = new LinkedHashMap<>();
    opt.put("exp_avg.x", Torch.zeros(DType.F32, Device.CPU, 3).retain());
    Path first =
        Checkpoints.save(
            out, m, opt, rng, new TrainerState(4, new Cursor(0, 16), 0, 64, 1), "a: 1\n");
    assertEquals(List.of(first), Checkpoints.list(out));

    Tensor broken = Torch.zeros(DType.F32, Device.CPU, 3);
    broken.close(); // writing it fails in the middle of the save, like a full disk would
    Map<String, Tensor> bad = new LinkedHashMap<>(opt);
    bad.put("exp_avg.y", broken);
    var e =
        assertThrows(
            IOException.class,
            () ->
                Checkpoints.save(
                    out, m, bad, rng, new TrainerState(8, new Cursor(0, 32), 0, 128, 1), "a: 1\n"));
    assertTrue(
        e.getMessage().contains("checkpoint-8")
            && e.getMessage().contains("earlier checkpoints are intact"),
        e.getMessage());
    assertFalse(Files.exists(out.resolve("checkpoint-8")));
    assertFalse(Files.exists(out.resolve(".checkpoint-8.tmp")));
    assertEquals(List.of(first), Checkpoints.list(out));
    Checkpoints.Loaded back = Checkpoints.load(first, DType.F32, Device.CPU);
    assertEquals(new Cursor(0, 16), back.state().cursor());
    assertEquals(4, back.state().step());
  }

  /**
   * Two ranks (threads, Gloo over loopback) save with sharded optimizer state: each writes its own
   * file, and a failure on rank 1 alone makes both throw and leaves no folder, the earlier one
   * intact. Loading takes each key from whichever file holds it, and names what is missing.
   */
  @Test
  void shardedSaveWritesAFilePerRankAndFailsOnEveryRankTogether(@TempDir Path out)
      throws Exception {
    LlamaModel m = tiny();
    int port;
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      port = s.getLocalPort();
    }
    var pool = java.util.concurrent.Executors.newFixedThreadPool(2);
    try {
      List<java.util.concurrent.Future<String>> ranks = new java.util.ArrayList<>();
      for (int r = 0; r < 2; r++) {
        Dist d = new Dist(r, r, 2, 2, "127.0.0.1", port);
        ranks.add(pool.submit(() -> saveTwiceOnRank(d, m, out)));
      }
      for (var f : ranks) { // each rank: the first save worked, the second failed
        String second = f.get(60, java.util.concurrent.TimeUnit.SECONDS);
        assertTrue(
            second.contains("checkpoint-8") && second.contains("earlier checkpoints are intact"),
            second);
      }
    } finally {
      pool.shutdownNow();
    }
    Path first = out.resolve("checkpoint-4");
    assertEquals(List.of(first), Checkpoints.list(out));
    assertFalse(Files.exists(out.resolve(".checkpoint-8.tmp")));
    assertTrue(Files.exists(first.resolve("optimizer-rank-0-of-2.safetensors")));
    assertTrue(Files.exists(first.resolve("optimizer-rank-1-of-2.safetensors")));
    assertFalse(Files.exists(first.resolve("optimizer.safetensors")));

    Checkpoints.Loaded back = Checkpoints.load(first, DType.F32, Device.CPU);
    Map<String, Tensor> opt = back.optimizer(List.of("exp_avg.x", "exp_avg.y"));
    assertEquals(0.0, opt.get("exp_avg.x").item()); // rank 0's
    assertEquals(1.0, opt.get("exp_avg.y").item()); // rank 1's
    var missing = assertThrows(IOException.class, () -> back.optimizer(List.of("exp_avg.z")));
    assertTrue(
        missing.getMessage().contains("'exp_avg.z'")
            && missing.getMessage().contains("optimizer-rank-1-of-2.safetensors"),
        missing.getMessage());
    Files.delete(first.resolve("optimizer-rank-1-of-2.safetensors"));
    var lost =
        assertThrows(IOException.class, () -> Checkpoints.load(first, DType.F32, Device.CPU));
    assertTrue(lost.getMessage().contains("optimizer-rank-1-of-2.safetensors"), lost.getMessage());
  }

  /**
   * Rank {@code d} saves step 4 with its share ({@code exp_avg.x} on rank 0, {@code exp_avg.y} on
   * rank 1), then step 8 where rank 1's share cannot be written; returns the second save's error.
   */
  private static String saveTwiceOnRank(Dist d, LlamaModel m, Path out) throws IOException {
    try (Group g = Group.join(d, Device.CPU, java.time.Duration.ofSeconds(30))) {
      String name = d.rank() == 0 ? "exp_avg.x" : "exp_avg.y";
      Map<String, Tensor> rng = Map.of("cpu", Torch.cpuRngState().retain());
      Map<String, Tensor> share = Map.of(name, Torch.full(d.rank(), DType.F32, Device.CPU, 1));
      Checkpoints.Weights w = Checkpoints.Weights.of(m);
      TrainerState s4 = new TrainerState(4, new Cursor(0, 16), 0, 64, 1);
      Checkpoints.save(g, out, w, share, true, rng, s4, "");
      Tensor broken = Torch.zeros(DType.F32, Device.CPU, 3);
      if (d.rank() == 1) broken.close(); // rank 1's disk is full
      TrainerState s8 = new TrainerState(8, new Cursor(0, 32), 0, 128, 1);
      var e =
          assertThrows(
              IOException.class,
              () -> Checkpoints.save(g, out, w, Map.of(name, broken), true, rng, s8, ""));
      return e.getMessage();
    }
  }

  @Test
  void pruneKeepsTheNewestAndIgnoresIncompleteFolders(@TempDir Path out) throws Exception {
    LlamaModel m = tiny();
    Map<String, Tensor> rng = Map.of("cpu", Torch.cpuRngState().retain());
    for (int s : new int[] {2, 4, 6})
      Checkpoints.save(out, m, Map.of(), rng, new TrainerState(s, Cursor.START, 0, 0, 1), "");
    Files.createDirectories(out.resolve("checkpoint-9")); // no trainer_state.json: incomplete
    assertEquals(6, Checkpoints.stepOf(Checkpoints.latest(out).orElseThrow()));
    Checkpoints.prune(out, 2);
    assertEquals(
        List.of(out.resolve("checkpoint-4"), out.resolve("checkpoint-6")), Checkpoints.list(out));
  }
}
