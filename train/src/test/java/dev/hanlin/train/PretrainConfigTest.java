package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The checks of a pretraining config: zero_stage and what stage 2 needs, step counts, warmup_ratio,
 * flat LoRA keys, and flags merged onto the file.
 */
class PretrainConfigTest {
  static PretrainConfig with(Map<String, Object> keys) {
    Map<String, Object> all = new HashMap<>(keys);
    all.putAll(
        Map.of("tokenizer", "t.model", "output_dir", "out", "data_dir", "d", "model_config", "c"));
    return PretrainConfig.load(null, all);
  }

  @Test
  void zeroStage2NeedsGradientCheckpointing() {
    var e = assertThrows(RuntimeException.class, () -> with(Map.of("zero_stage", 2)));
    assertTrue(
        e.getMessage().contains("zero_stage: 2")
            && e.getMessage().contains("gradient_checkpointing: true"),
        e.getMessage());
    assertEquals(
        2, with(Map.of("zero_stage", 2, "gradient_checkpointing", true)).zeroStage().intValue());
    var four = assertThrows(RuntimeException.class, () -> with(Map.of("zero_stage", 4)));
    assertTrue(four.getMessage().contains("'zero_stage' must be 0"), four.getMessage());
  }

  @Test
  void zeroStage3IsFsdpFullShardAndNeedsGradientCheckpointing() {
    var e = assertThrows(RuntimeException.class, () -> with(Map.of("fsdp", "full_shard")));
    assertTrue(
        e.getMessage().contains("zero_stage: 3")
            && e.getMessage().contains("gradient_checkpointing: true")
            && e.getMessage().contains("block by block"),
        e.getMessage());
    Map<String, Object> ckpt = Map.of("gradient_checkpointing", true);
    assertEquals(3, with(plus(ckpt, "fsdp", "full_shard auto_wrap")).zeroStage().intValue());
    assertEquals(3, with(plus(ckpt, "zero_stage", 3)).zeroStage().intValue());
    assertEquals(2, with(plus(ckpt, "fsdp", "shard_grad_op")).zeroStage().intValue());
    assertEquals(null, with(plus(ckpt, "fsdp", "full_shard")).fsdp(), "folded into zero_stage");
    var offload = assertThrows(RuntimeException.class, () -> with(Map.of("fsdp", "offload")));
    assertTrue(
        offload.getMessage().contains("'fsdp: offload' is not supported"), offload.getMessage());
    Map<String, Object> both = new HashMap<>(plus(ckpt, "fsdp", "full_shard"));
    both.put("zero_stage", 2);
    var clash = assertThrows(RuntimeException.class, () -> with(both));
    assertTrue(clash.getMessage().contains("means zero_stage 3"), clash.getMessage());
    // master weights with every stage: 3's shards are the masters, 1 and 2 keep the owners' share
    Map<String, Object> mw = new HashMap<>(plus(ckpt, "zero_stage", 3));
    mw.putAll(Map.of("bf16", true, "master_weights", true));
    for (int stage : new int[] {0, 1, 2, 3}) {
      mw.put("zero_stage", stage);
      assertTrue(with(mw).masterWeights(), "stage " + stage);
      assertEquals(stage, with(mw).zeroStage().intValue());
    }
  }

  /**
   * LoRA with zero_stage 3 (the frozen base sharded) is accepted; on a 4- or 8-bit base it is
   * refused naming both keys.
   */
  @Test
  void zeroStage3TakesLoraButNotAQuantizedBase(@TempDir Path dir) throws Exception {
    String head =
        "tokenizer: t.model\noutput_dir: out\nmodel_name_or_path: m\ntrain_files: [x.csv]\nsft: {}\n"
            + "gradient_checkpointing: true\nzero_stage: 3\n";
    Path lora = Files.writeString(dir.resolve("lora.yaml"), head + "lora: {r: 8}\n");
    PretrainConfig c = PretrainConfig.load(lora, Map.of());
    assertEquals(3, c.zeroStage().intValue());
    assertEquals(8, c.lora().r());
    for (String bits : List.of("lora: {r: 8, load_in_bits: 4}\n", "lora_r: 8\nload_in_bits: 8\n")) {
      Path q = Files.writeString(dir.resolve("q.yaml"), head + bits);
      var e = assertThrows(RuntimeException.class, () -> PretrainConfig.load(q, Map.of()));
      assertTrue(
          e.getMessage().contains("'zero_stage: 3' with 'lora.load_in_bits' is not supported"),
          e.getMessage());
    }
  }

  private static Map<String, Object> plus(Map<String, Object> m, String k, Object v) {
    Map<String, Object> out = new HashMap<>(m);
    out.put(k, v);
    return out;
  }

  @Test
  void stepCountsAreCheckedNamingTheKey() {
    for (long bad : new long[] {0, -3}) {
      var e = assertThrows(RuntimeException.class, () -> with(Map.of("max_steps", bad)));
      assertTrue(e.getMessage().contains("'max_steps' must be > 0, got " + bad), e.getMessage());
    }
    var s = assertThrows(RuntimeException.class, () -> with(Map.of("save_steps", -1)));
    assertTrue(s.getMessage().contains("'save_steps' must be >= 0, got -1"), s.getMessage());
    var w = assertThrows(RuntimeException.class, () -> with(Map.of("warmup_ratio", 1.5)));
    assertTrue(w.getMessage().contains("'warmup_ratio'"), w.getMessage());
  }

  @Test
  void negativeAndFractionalValuesInTheFileNameKeyAndLine(@TempDir Path dir) throws Exception {
    String head = "tokenizer: t.model\noutput_dir: out\ndata_dir: d\nmodel_config: c\n";
    Path y = Files.writeString(dir.resolve("a.yaml"), head + "save_steps: -1\nseed: 1\n");
    var e = assertThrows(RuntimeException.class, () -> PretrainConfig.load(y, Map.of()));
    assertEquals(y + ":5: 'save_steps' must be >= 0, got -1", e.getMessage());
    Path f = Files.writeString(dir.resolve("b.yaml"), head + "max_steps: 80.5\nseed: 1\n");
    e = assertThrows(RuntimeException.class, () -> PretrainConfig.load(f, Map.of()));
    assertEquals(f + ":5: key 'max_steps': expected a whole number, got 80.5", e.getMessage());
  }

  @Test
  void warmupRatioIsAShareOfTheRunRoundedUpUnlessStepsAreGiven() {
    assertEquals(3, with(Map.of("warmup_ratio", 0.025)).warmupStepsFor(100)); // ceil(2.5)
    assertEquals(7, with(Map.of("warmup_ratio", 0.03, "warmup_steps", 7)).warmupStepsFor(100));
    assertEquals(0, with(Map.of()).warmupStepsFor(100));
  }

  /**
   * Llama2-Chinese's --load_in_bits 4 becomes lora.load_in_bits; it needs LoRA and a model folder.
   */
  @Test
  void flatLoadInBitsFoldsIntoLoraAndNeedsLoraOnAModelFolder(@TempDir Path dir) throws Exception {
    String head =
        "tokenizer: t.model\noutput_dir: out\nmodel_name_or_path: m\ntrain_files: [x.csv]\nsft: {}\n";
    Path flat = Files.writeString(dir.resolve("flat.yaml"), head + "lora_r: 8\nload_in_bits: 4\n");
    PretrainConfig c = PretrainConfig.load(flat, Map.of());
    assertEquals(4, c.lora().baseBits());
    assertEquals(null, c.loadInBits()); // the resolved config holds lora.load_in_bits only
    Path section =
        Files.writeString(dir.resolve("section.yaml"), head + "lora: {r: 8}\nload_in_bits: 8\n");
    assertEquals(8, PretrainConfig.load(section, Map.of()).lora().baseBits());
    Path noLora = Files.writeString(dir.resolve("nolora.yaml"), head + "load_in_bits: 4\n");
    var e = assertThrows(RuntimeException.class, () -> PretrainConfig.load(noLora, Map.of()));
    assertTrue(e.getMessage().contains("'load_in_bits' quantizes the frozen base"), e.getMessage());
    Path clash =
        Files.writeString(
            dir.resolve("clash.yaml"), head + "lora: {r: 8, load_in_bits: 8}\nload_in_bits: 4\n");
    e = assertThrows(RuntimeException.class, () -> PretrainConfig.load(clash, Map.of()));
    assertTrue(e.getMessage().contains("'lora.load_in_bits' is 8"), e.getMessage());
    Path fresh =
        Files.writeString(
            dir.resolve("fresh.yaml"),
            head.replace("model_name_or_path: m", "model_config: c")
                + "lora_r: 8\nload_in_bits: 4\n");
    e = assertThrows(RuntimeException.class, () -> PretrainConfig.load(fresh, Map.of()));
    assertTrue(e.getMessage().contains("a run from 'model_config'"), e.getMessage());
  }

  @Test
  void flatLoraKeysFoldIntoTheLoraSection(@TempDir Path dir) throws Exception {
    String head =
        "tokenizer: t.model\noutput_dir: out\nmodel_config: c\ntrain_files: [x.csv]\nsft: {}\n";
    Path flat =
        Files.writeString(
            dir.resolve("flat.yaml"),
            head
                + "lora_r: 16\nlora_alpha: 32\nlora_dropout: 0.1\n"
                + "target_modules: q_proj, v_proj\nmodules_to_save: [embed_tokens, lm_head]\n");
    PretrainConfig c = PretrainConfig.load(flat, Map.of());
    assertEquals(16, c.lora().r());
    assertEquals(32.0, c.lora().alpha());
    assertEquals(0.1, c.lora().dropout());
    assertEquals(List.of("q_proj", "v_proj"), c.lora().targetModules());
    assertEquals(List.of("embed_tokens", "lm_head"), c.lora().modulesToSave());
    assertEquals(null, c.loraR()); // the resolved config holds the section only
    String resolved =
        new com.fasterxml.jackson.databind.ObjectMapper(
                new com.fasterxml.jackson.dataformat.yaml.YAMLFactory())
            .writeValueAsString(c);
    assertTrue(!resolved.contains("lora_r") && resolved.contains("lora:"), resolved);
    // as a list too, and through flags
    assertEquals(
        List.of("k_proj"),
        PretrainConfig.load(flat, Map.of("target_modules", List.of("k_proj")))
            .lora()
            .targetModules());

    Path both = Files.writeString(dir.resolve("both.yaml"), head + "lora_r: 16\nlora:\n  r: 8\n");
    var e = assertThrows(RuntimeException.class, () -> PretrainConfig.load(both, Map.of()));
    assertTrue(
        e.getMessage().contains("'lora_r' and the 'lora:' section both set LoRA"), e.getMessage());

    // --set on a key of a section, with or without the section in the file
    Path nested = Files.writeString(dir.resolve("nested.yaml"), head + "lora:\n  r: 8\n");
    PretrainConfig n = PretrainConfig.load(nested, Map.of("lora.r", 16, "lora.lora_alpha", 8));
    assertEquals(16, n.lora().r());
    assertEquals(8.0, n.lora().alpha());
    Path none = Files.writeString(dir.resolve("none.yaml"), head);
    assertEquals(4, PretrainConfig.load(none, Map.of("lora.r", 4)).lora().r());
    var u =
        assertThrows(RuntimeException.class, () -> PretrainConfig.load(none, Map.of("lora.rr", 4)));
    assertTrue(u.getMessage().contains("unknown key 'rr'"), u.getMessage());
  }

  @Test
  void aFlagOverridesTheFileNotItsDerivedDefaults(@TempDir Path dir) throws Exception {
    // the eval batch follows the train batch unless set; a flag for the train batch moves both
    Path y =
        Files.writeString(
            dir.resolve("a.yaml"),
            "tokenizer: t\noutput_dir: o\ndata_dir: d\nmodel_config: c\n"
                + "per_device_train_batch_size: 4\n");
    PretrainConfig c = PretrainConfig.load(y, Map.of("per_device_train_batch_size", 2));
    assertEquals(2, c.evalBatchSize());
  }

  @Test
  void theModelFolderIsTheDefaultTokenizerAndDataGoesBesideTheRun() {
    PretrainConfig c =
        PretrainConfig.load(
            null,
            Map.of("model_name_or_path", "base", "output_dir", "out", "train_files", List.of("a")));
    assertEquals("base", c.tokenizer());
    assertEquals(Path.of("out", "data").toString(), c.dataDir());
  }
}
