package dev.hanlin.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.config.ConfigException;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
  static final Path PARITY = TestData.dir("parity");

  /** transformers' torch.save(state_dict) (OrderedDict with _metadata) read without Python. */
  @Test
  void pytorchBinLoadsLikeSafetensors() throws Exception {
    LlamaModel bin = HfCheckpoint.load(PARITY.resolve("mha_bin"), DType.F32, Device.CPU);
    double d = ParityTest.maxLogitDiff(bin, PARITY.resolve("mha/goldens.safetensors"));
    assertTrue(d <= ParityTest.TOLERANCE, "pytorch_model.bin logits differ by " + d);
  }

  /** A pickle that asks for anything but tensors and dicts is refused, not executed. */
  @Test
  void hostilePickleIsRefused(@TempDir Path tmp) throws Exception {
    Path bin = tmp.resolve("evil.bin");
    try (var zip = new java.util.zip.ZipOutputStream(Files.newOutputStream(bin))) {
      zip.putNextEntry(new java.util.zip.ZipEntry("evil/data.pkl"));
      // protocol 2: GLOBAL os.system, ('echo pwned',), REDUCE, STOP
      var b = new java.io.ByteArrayOutputStream();
      b.write(new byte[] {(byte) 0x80, 2});
      b.writeBytes("cos\nsystem\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      b.write(new byte[] {'X', 10, 0, 0, 0});
      b.writeBytes("echo pwned".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      b.write(new byte[] {(byte) 0x85, 'R', '.'});
      byte[] pkl = b.toByteArray();
      zip.write(pkl);
      zip.closeEntry();
    }
    var e =
        assertThrows(
            java.io.IOException.class, () -> dev.hanlin.torch.TorchPickle.loadStateDict(bin));
    assertTrue(e.getMessage().contains("refuses to load 'os.system'"), e.getMessage());
    Files.writeString(tmp.resolve("plain.bin"), "not a zip");
    var z =
        assertThrows(
            java.io.IOException.class,
            () -> dev.hanlin.torch.TorchPickle.loadStateDict(tmp.resolve("plain.bin")));
    assertTrue(z.getMessage().contains("plain.bin"), z.getMessage());
  }

  /**
   * config.json with fewer layers than the weights hold (issue 13 item 2): the extra layer is an
   * error naming its tensors and file, for safetensors and pytorch_model.bin alike, not dropped.
   */
  @Test
  void tensorsTheConfigHasNoPlaceForAreAnError(@TempDir Path tmp) throws Exception {
    for (String src : List.of("mha", "mha_bin")) {
      Path dir = tmp.resolve(src);
      Files.createDirectories(dir);
      try (var files = Files.list(PARITY.resolve(src))) {
        for (Path f : files.toList()) Files.copy(f, dir.resolve(f.getFileName()));
      }
      Path config = dir.resolve("config.json");
      String json = Files.readString(config);
      assertTrue(json.contains("\"num_hidden_layers\": 2"), json);
      Files.writeString(
          config, json.replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1"));
      var e =
          assertThrows(ConfigException.class, () -> HfCheckpoint.load(dir, DType.F32, Device.CPU));
      String file = src.equals("mha") ? "model.safetensors" : "pytorch_model.bin";
      assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
      assertTrue(
          e.getMessage().contains("model.layers.1.input_layernorm.weight (" + file + ")"),
          e.getMessage());
      assertTrue(e.getMessage().contains("num_hidden_layers 1"), e.getMessage());
    }
  }

  /** HF's own leftovers (rotary inv_freq buffers) are still accepted, as transformers does. */
  @Test
  void rotaryInvFreqBuffersAreStillIgnored(@TempDir Path tmp) throws Exception {
    LlamaModel m = HfCheckpoint.load(PARITY.resolve("mha"), DType.F32, Device.CPU);
    var w = new LinkedHashMap<String, Tensor>(m.weights());
    try (Scope s = Scope.open()) {
      w.put("model.layers.0.self_attn.rotary_emb.inv_freq", Torch.ones(DType.F32, Device.CPU, 8));
      dev.hanlin.torch.safetensors.ShardedCheckpoint.save(tmp, w, Long.MAX_VALUE);
    }
    Files.copy(PARITY.resolve("mha/config.json"), tmp.resolve("config.json"));
    LlamaModel back = HfCheckpoint.load(tmp, DType.F32, Device.CPU);
    assertEquals(m.weights().keySet(), back.weights().keySet());
  }

  @Test
  void bf16LoadStaysCloseToFp32() throws Exception {
    LlamaModel m = HfCheckpoint.load(PARITY.resolve("gqa"), DType.BF16, Device.CPU);
    assertEquals(DType.BF16, m.dtype());
    double d = ParityTest.maxLogitDiff(m, PARITY.resolve("gqa/goldens.safetensors"));
    assertTrue(d < 0.1, "bf16 logits drift " + d);
  }

  @Test
  void mismatchedWeightsAreReportedByName(@TempDir Path tmp) throws Exception {
    LlamaModel m = HfCheckpoint.load(PARITY.resolve("mha"), DType.F32, Device.CPU);
    var w = new LinkedHashMap<>(m.weights());
    w.remove("model.layers.1.mlp.up_proj.weight");
    w.put("model.layers.9.extra.weight", w.get("model.norm.weight"));
    var e = assertThrows(ConfigException.class, () -> LlamaModel.fromWeights(m.config(), w));
    assertTrue(
        e.getMessage().contains("missing [model.layers.1.mlp.up_proj.weight]"), e.getMessage());
    assertTrue(e.getMessage().contains("unexpected [model.layers.9.extra.weight]"), e.getMessage());

    var w2 = new LinkedHashMap<>(m.weights());
    w2.put("model.norm.weight", Torch.ones(DType.F32, Device.CPU, 3));
    e = assertThrows(ConfigException.class, () -> LlamaModel.fromWeights(m.config(), w2));
    assertTrue(e.getMessage().contains("model.norm.weight has shape [3]"), e.getMessage());

    var none =
        assertThrows(ConfigException.class, () -> HfCheckpoint.load(tmp, DType.F32, Device.CPU));
    assertTrue(none.getMessage().contains("config.json"), none.getMessage());
  }

  @Test
  void resizedEmbeddingsKeepOldRowsAndAddTheMean() throws Exception {
    LlamaModel m = HfCheckpoint.load(PARITY.resolve("mha"), DType.F32, Device.CPU);
    int v = m.config().vocabSize();
    LlamaModel big = m.resizeTokenEmbeddings(v + 10);
    assertEquals(v + 10, big.config().vocabSize());
    try (Scope s = Scope.open()) {
      for (String name : List.of("model.embed_tokens.weight", "lm_head.weight")) {
        Tensor old = m.weights().get(name), grown = big.weights().get(name);
        assertArrayEquals(old.toFloatArray(), grown.narrow(0, 0, v).toFloatArray(), name);
        float[] mean = old.mean(0, false).toFloatArray();
        for (int r = v; r < v + 10; r++)
          assertArrayEquals(mean, grown.select(0, r).toFloatArray(), 1e-6f);
      }
      // old tokens' logits are unchanged by the resize
      Tensor ids = Torch.fromLongs(new long[] {5, 17, 99}, 1, 3);
      try (Grad.Guard g = Grad.inference()) {
        Tensor a = m.forward(ids, null), b = big.forward(ids, null).narrow(2, 0, v);
        assertEquals(0.0, a.sub(b).abs().max().item());
      }
    }
    assertThrows(ConfigException.class, () -> m.resizeTokenEmbeddings(v - 1));
  }

  @Test
  void newTokensStartAsTheMeanOfTheTokensTheirTextWasSplitInto() throws Exception {
    LlamaModel m = HfCheckpoint.load(PARITY.resolve("tied"), DType.F32, Device.CPU);
    int v = m.config().vocabSize();
    LlamaModel big = m.resizeTokenEmbeddings(v + 2, new int[][] {{10, 20, 30}, {}});
    try (Scope s = Scope.open()) {
      Tensor e = m.weights().get("model.embed_tokens.weight");
      Tensor g = big.weights().get("model.embed_tokens.weight");
      float[] a = e.select(0, 10).toFloatArray(),
          b = e.select(0, 20).toFloatArray(),
          c = e.select(0, 30).toFloatArray();
      float[] want = new float[a.length];
      for (int i = 0; i < a.length; i++) want[i] = (a[i] + b[i] + c[i]) / 3;
      assertArrayEquals(want, g.select(0, v).toFloatArray(), 1e-6f);
      assertArrayEquals(e.mean(0, false).toFloatArray(), g.select(0, v + 1).toFloatArray(), 1e-6f);
      assertEquals(v + 2, big.config().vocabSize());
    }
    assertThrows(
        IllegalArgumentException.class, () -> m.resizeTokenEmbeddings(v + 1, new int[][] {{v}}));
  }

  @Test
  void initIsDeterministicAndHfShaped(@TempDir Path tmp) throws Exception {
    LlamaConfig c = LlamaConfig.read(PARITY.resolve("tied/config.json"));
    LlamaModel a = LlamaModel.init(c, 42, DType.F32, Device.CPU);
    LlamaModel b = LlamaModel.init(c, 42, DType.F32, Device.CPU);
    for (var e : a.weights().entrySet())
      assertArrayEquals(
          e.getValue().toFloatArray(), b.weights().get(e.getKey()).toFloatArray(), e.getKey());
    float[] norm = a.weights().get("model.norm.weight").toFloatArray();
    for (float x : norm) assertEquals(1f, x);
    float[] emb = a.weights().get("model.embed_tokens.weight").toFloatArray();
    double sq = 0;
    for (float x : emb) sq += x * x;
    double std = Math.sqrt(sq / emb.length);
    assertEquals(c.initializerRange(), std, 0.01 * c.initializerRange() * 10);
    HfCheckpoint.save(a, tmp, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES);
    assertTrue(Files.exists(tmp.resolve("model.safetensors")));
    assertTrue(Files.exists(tmp.resolve("generation_config.json")));
  }
}
