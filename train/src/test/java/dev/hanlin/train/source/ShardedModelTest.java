package dev.hanlin.train.source;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.parallel.Parallelism;
import dev.hanlin.train.parallel.UnitWeights;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ZeRO-3's setup without the whole model: a placeholder model whose weights hold one element each,
 * the float32 values made (or read) one unit at a time and emptied before the next, and the result
 * the weights of the model built whole, bit for bit.
 */
class ShardedModelTest {
  static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

  static LlamaConfig config() {
    return new LlamaConfig(
        64,
        16,
        32,
        3,
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
        0,
        DType.F32,
        false,
        false);
  }

  /**
   * Records the units handed out: when each is asked for, every earlier one must be empty already;
   * the largest number of full-size elements alive at once is noted.
   */
  static final class Recording implements UnitWeights {
    final UnitWeights inner;
    final List<Tensor> handed = new ArrayList<>();
    final List<List<String>> asked = new ArrayList<>();
    long mostAlive;

    Recording(UnitWeights inner) {
      this.inner = inner;
    }

    @Override
    public Map<String, Tensor> unit(List<String> names) {
      for (Tensor t : handed) assertEquals(0, t.numel(), "a unit handed out earlier is not empty");
      handed.clear();
      asked.add(names);
      Map<String, Tensor> out = inner.unit(names);
      for (Tensor t : out.values()) handed.add(t.retain()); // the check above reads them later
      mostAlive = Math.max(mostAlive, out.values().stream().mapToLong(Tensor::numel).sum());
      return out;
    }
  }

  /** Storage bytes the model's weights hold. */
  static long storageBytes(LlamaModel m) {
    return m.weights().values().stream().mapToLong(t -> t.raw().storage().nbytes()).sum();
  }

  static void assertSameWeights(LlamaModel want, LlamaModel got) {
    for (var e : want.weights().entrySet()) {
      Tensor a = e.getValue(), b = got.weights().get(e.getKey());
      assertArrayEquals(a.shape(), b.shape(), e.getKey());
      assertEquals(0.0, a.sub(b).abs().max().item(), 0.0, e.getKey());
    }
  }

  /** From scratch: init's values, one unit at a time, never two units alive. */
  @Test
  void aFreshModelIsSetUpOneUnitAtATimeWithInitsValues() {
    LlamaConfig c = config();
    LlamaModel whole = LlamaModel.init(c, 7, DType.F32, Device.CPU);
    LlamaModel m = ShardedModel.placeholders(c, Device.CPU);
    assertEquals(m.weights().size() * 4L, storageBytes(m), "one float a weight");
    Recording units = new Recording(ShardedModel.fresh(c, 7));
    Parallelism p = Parallelism.sharded(Group.single(), m, units, QUIET);
    assertEquals(5, units.asked.size(), "embedding, 3 blocks, head: " + units.asked);
    long block = 2 * 16 * 16 + 2 * 8 * 16 + 3 * 16 * 32 + 2 * 16; // q, o; k, v; the MLP; norms
    assertEquals(block, units.mostAlive, "the largest unit is a block (the embedding: 1024)");
    assertEquals(0, storageBytes(m), "no weight holds memory after setup");
    try (Grad.Guard g = p.wholeModel()) {
      assertSameWeights(whole, m);
    }
    assertEquals(0, storageBytes(m));
  }

  /** From a model folder: its safetensors read unit by unit, the values those it holds. */
  @Test
  void aFolderIsReadOneUnitAtATime(@TempDir Path dir) throws Exception {
    LlamaConfig c = config();
    LlamaModel whole = LlamaModel.init(c, 11, DType.F32, Device.CPU);
    HfCheckpoint.save(whole, dir, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES);
    LlamaModel m = ShardedModel.placeholders(c, Device.CPU);
    try (UnitWeights w = ShardedModel.fromFolder(new HfFolder(dir, 0), c)) {
      Recording units = new Recording(w);
      Parallelism p = Parallelism.sharded(Group.single(), m, units, QUIET);
      assertEquals(5, units.asked.size());
      assertTrue(units.mostAlive < c.parameterCount() / 2, "" + units.mostAlive);
      try (Grad.Guard g = p.wholeModel()) {
        assertSameWeights(whole, m);
      }
    }
  }
}
