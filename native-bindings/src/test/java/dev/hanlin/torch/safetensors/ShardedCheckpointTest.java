package dev.hanlin.torch.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Single-file and sharded HF checkpoints: naming, index contents, round trip, and mismatches. */
class ShardedCheckpointTest {
  @TempDir Path dir;

  /** Six tensors of 4, 40, 80, 12, 400 and 2 bytes. */
  private static Map<String, Tensor> weights() {
    Random rnd = new Random(3);
    Map<String, Tensor> w = new LinkedHashMap<>();
    w.put("model.embed_tokens.weight", Bytes.random(rnd, DType.BF16, 2));
    w.put("model.layers.0.self_attn.q_proj.weight", Bytes.random(rnd, DType.F32, 2, 5));
    w.put("model.layers.0.mlp.up_proj.weight", Bytes.random(rnd, DType.F32, 4, 5));
    w.put("model.layers.0.input_layernorm.weight", Bytes.random(rnd, DType.F16, 6));
    w.put("model.layers.1.mlp.down_proj.weight", Bytes.random(rnd, DType.F64, 50));
    w.put("model.norm.weight", Bytes.random(rnd, DType.BF16, 1));
    return w;
  }

  private static List<String> files(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private static void assertSame(Map<String, Tensor> expected, ShardedCheckpoint ckpt)
      throws IOException {
    assertEquals(expected.keySet(), Set.copyOf(ckpt.names()));
    for (Map.Entry<String, Tensor> e : expected.entrySet()) {
      Tensor got = ckpt.load(e.getKey());
      assertEquals(e.getValue().dtype(), got.dtype(), e.getKey());
      assertArrayEquals(e.getValue().shape(), got.shape(), e.getKey());
      assertArrayEquals(Bytes.of(e.getValue()), Bytes.of(got), e.getKey());
    }
  }

  @Test
  void smallModelIsOneFile() throws IOException {
    Map<String, Tensor> w = weights();
    ShardedCheckpoint.save(dir, w, 10_000);
    assertEquals(List.of("model.safetensors"), files(dir));
    try (ShardedCheckpoint c = ShardedCheckpoint.open(dir)) {
      assertEquals(1, c.files().size());
      assertSame(w, c);
    }
  }

  @Test
  void largeModelIsShardedWithHfNamesAndIndex() throws IOException {
    Map<String, Tensor> w = weights();
    ShardedCheckpoint.save(dir, w, 100);
    // Greedy in map order: [4+40] [80+12] [400 alone, above the limit] [2]
    List<String> expected =
        List.of(
            "model-00001-of-00004.safetensors",
            "model-00002-of-00004.safetensors",
            "model-00003-of-00004.safetensors",
            "model-00004-of-00004.safetensors",
            "model.safetensors.index.json");
    assertEquals(expected, files(dir));
    JsonNode index =
        SafetensorsFile.JSON.readTree(dir.resolve(ShardedCheckpoint.INDEX_FILE).toFile());
    assertEquals(4 + 40 + 80 + 12 + 400 + 2, index.get("metadata").get("total_size").asLong());
    JsonNode wm = index.get("weight_map");
    assertEquals(6, wm.size());
    assertEquals("model-00001-of-00004.safetensors", wm.get("model.embed_tokens.weight").asText());
    assertEquals(
        "model-00002-of-00004.safetensors",
        wm.get("model.layers.0.input_layernorm.weight").asText());
    assertEquals(
        "model-00003-of-00004.safetensors", wm.get("model.layers.1.mlp.down_proj.weight").asText());
    try (ShardedCheckpoint c = ShardedCheckpoint.open(dir)) {
      assertEquals(4, c.files().size());
      assertSame(w, c);
      assertTrue(c.fileOf("model.norm.weight").path().endsWith("model-00004-of-00004.safetensors"));
      SafetensorsException e =
          assertThrows(SafetensorsException.class, () -> c.load("lm_head.weight"));
      assertTrue(e.getMessage().contains("lm_head.weight"), e.getMessage());
    }
    // Re-saving as one file removes the index and the old shards; and back again.
    ShardedCheckpoint.save(dir, w, 1 << 20);
    assertEquals(List.of("model.safetensors"), files(dir));
    ShardedCheckpoint.save(dir, w, 500);
    assertEquals(
        List.of(
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json"),
        files(dir));
    try (ShardedCheckpoint c = ShardedCheckpoint.open(dir)) {
      assertSame(w, c);
    }
  }

  @Test
  void emptyFolderIsAnError() {
    SafetensorsException e =
        assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(dir));
    assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
  }

  @Test
  void missingShardFile() throws IOException {
    ShardedCheckpoint.save(dir, weights(), 100);
    Files.delete(dir.resolve("model-00003-of-00004.safetensors"));
    SafetensorsException e =
        assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(dir));
    assertTrue(e.getMessage().contains("model-00003-of-00004.safetensors"), e.getMessage());
    assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
    assertTrue(e.getMessage().contains(ShardedCheckpoint.INDEX_FILE), e.getMessage());
  }

  @Test
  void indexListsATensorNotInItsShard() throws IOException {
    ShardedCheckpoint.save(dir, weights(), 100);
    writeIndex(
        "{\"metadata\":{\"total_size\":1},\"weight_map\":{"
            + "\"model.embed_tokens.weight\":\"model-00001-of-00004.safetensors\","
            + "\"model.layers.0.self_attn.q_proj.weight\":\"model-00001-of-00004.safetensors\","
            + "\"model.layers.0.mlp.up_proj.weight\":\"model-00002-of-00004.safetensors\","
            + "\"model.layers.0.input_layernorm.weight\":\"model-00002-of-00004.safetensors\","
            + "\"model.layers.1.mlp.down_proj.weight\":\"model-00003-of-00004.safetensors\","
            + "\"model.norm.weight\":\"model-00004-of-00004.safetensors\","
            + "\"lm_head.weight\":\"model-00004-of-00004.safetensors\"}}");
    SafetensorsException e =
        assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(dir));
    assertTrue(e.getMessage().contains("model-00004-of-00004.safetensors"), e.getMessage());
    assertTrue(e.getMessage().contains("'lm_head.weight'"), e.getMessage());
  }

  @Test
  void shardHoldsATensorTheIndexOmits() throws IOException {
    ShardedCheckpoint.save(dir, weights(), 100);
    writeIndex(
        "{\"weight_map\":{"
            + "\"model.embed_tokens.weight\":\"model-00001-of-00004.safetensors\","
            + "\"model.layers.0.mlp.up_proj.weight\":\"model-00002-of-00004.safetensors\","
            + "\"model.layers.0.input_layernorm.weight\":\"model-00002-of-00004.safetensors\","
            + "\"model.layers.1.mlp.down_proj.weight\":\"model-00003-of-00004.safetensors\","
            + "\"model.norm.weight\":\"model-00004-of-00004.safetensors\"}}");
    SafetensorsException e =
        assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(dir));
    assertTrue(e.getMessage().contains("model-00001-of-00004.safetensors"), e.getMessage());
    assertTrue(e.getMessage().contains("'model.layers.0.self_attn.q_proj.weight'"), e.getMessage());
    assertTrue(e.getMessage().contains("does not list"), e.getMessage());
  }

  @Test
  void badIndexFiles() throws IOException {
    writeIndex("{\"weight_map\":{\"w\":\"../model.safetensors\"}}");
    assertIndexError("'w'", "not a file name");
    writeIndex("{\"metadata\":{}}");
    assertIndexError("weight_map");
    writeIndex("{\"weight_map\":{\"w\":\"a.safetensors\"");
    assertIndexError("not valid JSON");
    writeIndex("{\"weight_map\":{\"w\":7}}");
    assertIndexError("'w'");
  }

  @Test
  void badShardNamesTheShard() throws IOException {
    ShardedCheckpoint.save(dir, weights(), 100);
    Files.write(dir.resolve("model-00002-of-00004.safetensors"), new byte[] {1, 2, 3});
    SafetensorsException e =
        assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(dir));
    assertTrue(e.getMessage().contains("model-00002-of-00004.safetensors"), e.getMessage());
  }

  private void writeIndex(String json) throws IOException {
    Files.writeString(dir.resolve(ShardedCheckpoint.INDEX_FILE), json);
  }

  private void assertIndexError(String... fragments) {
    SafetensorsException e =
        assertThrows(SafetensorsException.class, () -> ShardedCheckpoint.open(dir));
    assertTrue(e.getMessage().contains(ShardedCheckpoint.INDEX_FILE), e.getMessage());
    for (String f : fragments) assertTrue(e.getMessage().contains(f), e.getMessage());
    assertFalse(e.getMessage().isEmpty());
  }

  /**
   * Tensors put one at a time give the files save writes, byte for byte: one file, and shards with
   * the index (mixed dtypes, so the header's order differs from the order they come in).
   */
  @Test
  void streamingWritesTheSameFilesAsSave(@TempDir Path a, @TempDir Path b) throws IOException {
    Map<String, Tensor> w = weights();
    List<SafetensorsWriter.Planned> planned = new java.util.ArrayList<>();
    w.forEach((k, v) -> planned.add(new SafetensorsWriter.Planned(k, v.dtype(), v.shape())));
    for (long max : new long[] {1_000_000, 100}) {
      ShardedCheckpoint.save(a, w, max);
      try (ShardedCheckpoint.Streaming s = ShardedCheckpoint.stream(b, planned, max)) {
        for (var e : w.entrySet()) s.put(e.getKey(), e.getValue());
        s.finish();
      }
      assertEquals(files(a), files(b), "max " + max);
      for (String f : files(a))
        assertArrayEquals(Files.readAllBytes(a.resolve(f)), Files.readAllBytes(b.resolve(f)), f);
    }
    assertTrue(files(b).contains(ShardedCheckpoint.INDEX_FILE));
    // out of order, or a tensor unlike its plan, is refused, and leaves no file behind
    Path c = dir.resolve("c");
    try (ShardedCheckpoint.Streaming s = ShardedCheckpoint.stream(c, planned, 1_000_000)) {
      var e = assertThrows(SafetensorsException.class, () -> s.put("model.norm.weight", null));
      assertTrue(e.getMessage().contains("expected 'model.embed_tokens.weight'"), e.getMessage());
      var shape =
          assertThrows(
              SafetensorsException.class,
              () -> s.put("model.embed_tokens.weight", Bytes.random(new Random(1), DType.BF16, 3)));
      assertTrue(shape.getMessage().contains("planned"), shape.getMessage());
    }
    assertEquals(List.of(), files(c));
  }
}
