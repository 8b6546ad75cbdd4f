package dev.hanlin.train.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.safetensors.SafetensorsWriter;
import dev.hanlin.train.Checkpoints;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** ZeRO-3's units, their padding and decay split, and tensors assembled from rank files. */
class Zero3LayoutTest {
  /** A model of one layer: embedding, two layer weights, the final norm and an untied head. */
  static Map<String, long[]> shapes() {
    Map<String, long[]> s = new LinkedHashMap<>();
    s.put("model.embed_tokens.weight", new long[] {5, 2});
    s.put("model.layers.0.input_layernorm.weight", new long[] {2}); // a vector first
    s.put("model.layers.0.self_attn.q_proj.weight", new long[] {2, 2});
    s.put("model.norm.weight", new long[] {2});
    s.put("lm_head.weight", new long[] {5, 2});
    return s;
  }

  @Test
  void unitsFollowTheBackwardStagesMatricesFirstPaddedToTheWorld() {
    Zero3Layout l = Zero3Layout.of(shapes(), 1, 3);
    assertEquals(
        List.of("model.embed_tokens", "model.layers.0", "head"),
        l.units().stream().map(Zero3Layout.Unit::name).toList());
    Zero3Layout.Unit layer = l.units().get(1);
    assertEquals(0, layer.stage());
    // q_proj (4, decays) before the norm (2, does not): 6 elements, 2 a rank
    assertEquals("model.layers.0.self_attn.q_proj.weight", layer.tensors().get(0).name());
    assertEquals(4, layer.tensors().get(1).offset());
    assertEquals(List.of(6L, 4L, 2L), List.of(layer.numel(), layer.decay(), layer.shard()));
    Zero3Layout.Unit head = l.units().get(2);
    assertEquals(List.of(12L, 10L, 4L), List.of(head.numel(), head.decay(), head.shard()));
    assertEquals(l.units().get(2), l.find("model.norm.weight").getKey());
  }

  /**
   * The weights and the optimizer state come back whole from the rank files of a world of 3, each
   * tensor gathered from the ranks' slices (the embedding spans all three ranks and padding).
   */
  @Test
  void tensorsAreAssembledFromTheRankFiles(@TempDir Path dir) throws IOException {
    Map<String, long[]> shapes = shapes();
    Zero3Layout l = Zero3Layout.of(shapes, 1, 3);
    try (Scope s = Scope.open()) {
      Map<String, Tensor> whole = new LinkedHashMap<>();
      float next = 1;
      for (var e : shapes.entrySet()) {
        Tensor t = Torch.arange(Math.toIntExact(numel(e.getValue())), DType.F32, Device.CPU);
        whole.put(e.getKey(), t.add(next).view(e.getValue()));
        next += 100;
      }
      for (int r = 0; r < 3; r++) {
        Map<String, Tensor> model = new LinkedHashMap<>(), opt = new LinkedHashMap<>();
        for (Zero3Layout.Unit u : l.units()) {
          Tensor flat = Torch.zeros(DType.F32, Device.CPU, u.shard() * 3);
          for (var e : u.tensors())
            flat.narrow(0, e.offset(), e.numel()).copy_(whole.get(e.name()).reshape(-1));
          Tensor mine = flat.narrow(0, r * u.shard(), u.shard()).contiguous();
          model.put(u.name(), mine);
          opt.put("exp_avg." + u.name(), mine.mul(2));
          opt.put("step." + u.name(), Torch.full(7, DType.F32, Device.CPU));
        }
        SafetensorsWriter.write(dir.resolve(Zero3Layout.modelFile(r, 3)), model);
        SafetensorsWriter.write(dir.resolve(Checkpoints.optimizerShard(r, 3)), opt);
      }
      l.write(dir.resolve(Zero3Layout.FILE));
      assertTrue(Zero3Layout.isIn(dir));
      Zero3Layout read = Zero3Layout.read(dir);
      Map<String, Tensor> got = read.assemble(dir, false, shapes.keySet(), DType.F32, Device.CPU);
      for (var e : whole.entrySet()) {
        assertArrayEquals(e.getValue().shape(), got.get(e.getKey()).shape(), e.getKey());
        assertArrayEquals(
            e.getValue().toFloatArray(), got.get(e.getKey()).toFloatArray(), e.getKey());
      }
      Map<String, Tensor> state =
          read.assemble(
              dir,
              true,
              List.of("exp_avg.model.norm.weight", "step.lm_head.weight"),
              DType.F32,
              Device.CPU);
      assertArrayEquals(
          whole.get("model.norm.weight").mul(2).toFloatArray(),
          state.get("exp_avg.model.norm.weight").toFloatArray());
      assertEquals(7, state.get("step.lm_head.weight").item());
      got.values().forEach(Tensor::release);
      state.values().forEach(Tensor::release);
    }
  }

  @Test
  void aDamagedLayoutIsRefusedNamingTheFile(@TempDir Path dir) throws IOException {
    Files.writeString(dir.resolve(Zero3Layout.FILE), "{\"format\": \"other\"}");
    var e =
        org.junit.jupiter.api.Assertions.assertThrows(
            IOException.class, () -> Zero3Layout.read(dir));
    assertTrue(e.getMessage().contains(Zero3Layout.FILE), e.getMessage());
  }

  private static long numel(long[] shape) {
    long n = 1;
    for (long x : shape) n *= x;
    return n;
  }
}
