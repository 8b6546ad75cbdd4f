package dev.hanlin.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.config.ConfigException;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LoRA in Java: trainable sets, a fresh adapter equal to the base, merge equal to base + adapter,
 * and an exact round trip through PEFT's folder layout.
 */
class LoraTest {
  static final Path GQA = TestData.dir("parity").resolve("gqa");
  @TempDir Path tmp;

  static LoraConfig config(
      int r, double alpha, List<String> targets, boolean rs, List<String> save) {
    return new LoraConfig(r, alpha, 0.0, targets, rs, save);
  }

  /** Adapters whose B (and saved modules) are random, so they change the output. */
  static LoraAdapters randomized(LlamaModel base, LoraConfig lc) {
    LoraAdapters a = LoraAdapters.init(base, lc, 5);
    Generator g = Generator.cpu(9);
    try (Grad.Guard ng = Grad.noGrad()) {
      a.weights()
          .forEach(
              (k, v) -> {
                try (Scope s = Scope.open()) {
                  Tensor noise = Torch.randn(g, DType.F32, Device.CPU, v.shape()).mul(0.05);
                  if (k.endsWith("lora_B.weight")) v.copy_(noise);
                  else if (!k.endsWith("lora_A.weight")) v.copy_(v.add(noise));
                }
              });
    }
    return a;
  }

  static double maxDiff(LlamaModel a, LlamaModel b, Tensor ids) {
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.inference()) {
      return a.forward(ids, null).sub(b.forward(ids, null)).abs().max().item();
    }
  }

  static Tensor ids() {
    long[] v = new long[2 * 16];
    for (int i = 0; i < v.length; i++) v[i] = 3 + (i * 53L) % 380;
    return Torch.fromLongs(v, 2, 16).retain();
  }

  @Test
  void trainableSetsFollowTargetsAndModulesToSave() throws Exception {
    LlamaModel base = HfCheckpoint.load(GQA, DType.F32, Device.CPU);
    LoraAdapters all =
        LoraAdapters.init(base, new LoraConfig(null, null, null, null, null, null), 1);
    assertEquals(2 * 7 * 2, all.weights().size()); // 2 layers x 7 targets x (A, B)
    assertEquals(
        List.of(4L * 0 + 8, 64L),
        List.of(
            all.weights().get("model.layers.0.self_attn.q_proj.lora_A.weight").shape()[0],
            all.weights().get("model.layers.0.self_attn.q_proj.lora_A.weight").shape()[1]));
    // k_proj of the GQA model is (16, 64): B is (16, r)
    assertEquals(16, all.weights().get("model.layers.1.self_attn.k_proj.lora_B.weight").size(0));
    assertEquals(160, all.weights().get("model.layers.1.mlp.down_proj.lora_A.weight").size(1));
    LoraAdapters some =
        LoraAdapters.init(
            base, config(4, 8, List.of("q_proj", "v_proj"), true, List.of("lm_head")), 1);
    Set<String> names = new TreeSet<>(some.weights().keySet());
    assertEquals(
        new TreeSet<>(
            List.of(
                "lm_head.weight",
                "model.layers.0.self_attn.q_proj.lora_A.weight",
                "model.layers.0.self_attn.q_proj.lora_B.weight",
                "model.layers.0.self_attn.v_proj.lora_A.weight",
                "model.layers.0.self_attn.v_proj.lora_B.weight",
                "model.layers.1.self_attn.q_proj.lora_A.weight",
                "model.layers.1.self_attn.q_proj.lora_B.weight",
                "model.layers.1.self_attn.v_proj.lora_A.weight",
                "model.layers.1.self_attn.v_proj.lora_B.weight")),
        names);
    assertEquals(8 / Math.sqrt(4), some.config().scaling());
    assertThrows(
        IllegalArgumentException.class, () -> config(4, 8, List.of("qkv"), false, List.of()));
  }

  @Test
  void freshAdapterEqualsBaseAndOnlyAdaptersGetGradients() throws Exception {
    LlamaModel base = HfCheckpoint.load(GQA, DType.F32, Device.CPU);
    LoraConfig lc = config(4, 8, LoraConfig.ALL_TARGETS, false, List.of("embed_tokens"));
    LoraAdapters fresh = LoraAdapters.init(base, lc, 3);
    Tensor ids = ids();
    assertEquals(0.0, maxDiff(base, fresh.applyTo(base), ids), 1e-6);
    LoraAdapters a = randomized(base, lc);
    for (Tensor t : a.weights().values()) t.requiresGrad(true);
    LlamaModel m = a.applyTo(base);
    try (Scope s = Scope.open()) {
      Tensor logits = m.forward(ids, null);
      Torch.crossEntropy(logits.reshape(-1, logits.size(-1)), ids.reshape(-1)).backward();
    }
    for (var e : base.weights().entrySet())
      assertNull(e.getValue().grad(), e.getKey() + " of the frozen base got a gradient");
    for (var e : a.weights().entrySet()) {
      Tensor g = e.getValue().grad();
      assertNotNull(g, e.getKey() + " got no gradient");
      assertTrue(g.abs().sum().item() > 0, e.getKey() + " has a zero gradient");
    }
  }

  @Test
  void mergeEqualsBasePlusAdapter() throws Exception {
    LlamaModel base = HfCheckpoint.load(GQA, DType.F32, Device.CPU);
    for (LoraConfig lc :
        List.of(
            config(4, 8, LoraConfig.ALL_TARGETS, false, List.of()),
            config(8, 16, List.of("q_proj", "v_proj"), true, List.of("embed_tokens", "lm_head")))) {
      LoraAdapters a = randomized(base, lc);
      Tensor ids = ids();
      double changed = maxDiff(base, a.applyTo(base), ids);
      double merged = maxDiff(a.merge(base), a.applyTo(base), ids);
      System.out.printf(
          "lora %s: |adapter - base| %.3g, |merged - adapter| %.3g%n",
          lc.targetModules(), changed, merged);
      assertTrue(changed > 1e-2, "the adapter must change the logits, changed " + changed);
      assertTrue(merged < 1e-4, "merged differs from base + adapter by " + merged);
    }
  }

  @Test
  void peftLayoutRoundTripsExactly() throws Exception {
    LlamaModel base = HfCheckpoint.load(GQA, DType.F32, Device.CPU);
    LoraConfig lc =
        config(8, 16, List.of("q_proj", "v_proj", "down_proj"), true, List.of("lm_head"));
    LoraAdapters a = randomized(base, lc);
    Path dir = tmp.resolve("adapter");
    PeftAdapter.save(a, dir, GQA.toString());
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PeftAdapter.WEIGHTS))) {
      assertTrue(f.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
      assertTrue(f.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
      assertTrue(f.contains("base_model.model.lm_head.weight"));
      assertEquals(2 * 3 * 2 + 1, f.names().size());
    }
    JsonNode cfg = new ObjectMapper().readTree(dir.resolve(PeftAdapter.CONFIG).toFile());
    assertEquals("LORA", cfg.get("peft_type").asText());
    assertEquals("CAUSAL_LM", cfg.get("task_type").asText());
    assertEquals(8, cfg.get("r").asInt());
    assertEquals(16.0, cfg.get("lora_alpha").asDouble());
    assertTrue(cfg.get("use_rslora").asBoolean());
    assertEquals("lm_head", cfg.get("modules_to_save").get(0).asText());
    LoraAdapters back = PeftAdapter.load(dir, base.config(), Device.CPU);
    assertEquals(lc, back.config());
    for (var e : a.weights().entrySet())
      assertEquals(
          0.0, e.getValue().sub(back.weights().get(e.getKey())).abs().max().item(), e.getKey());
    assertEquals(0.0, maxDiff(a.applyTo(base), back.applyTo(base), ids()));
    Files.writeString(
        dir.resolve(PeftAdapter.CONFIG),
        Files.readString(dir.resolve(PeftAdapter.CONFIG)).replace("\"r\" : 8", "\"r\" : 4"));
    ConfigException bad =
        assertThrows(ConfigException.class, () -> PeftAdapter.load(dir, base.config(), Device.CPU));
    assertTrue(bad.getMessage().contains("has shape"), bad.getMessage());
  }
}
