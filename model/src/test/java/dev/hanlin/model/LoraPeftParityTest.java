package dev.hanlin.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.TreeSet;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Parity with PEFT: adapters saved by test-data/lora/make_peft_goldens.py (PEFT's get_peft_model on
 * test-data/parity/gqa, random non-zero B) load into Hanlin with PEFT's logits for base + adapter
 * and for merge_and_unload (max |Δ| ≤ 1e-4), and Hanlin writes them back under exactly PEFT's key
 * names.
 */
class LoraPeftParityTest {
  static final double TOLERANCE = 1e-4;
  @TempDir Path tmp;

  static Path caseDir(String name) {
    Path dir = TestData.dir("lora").resolve(name);
    if (!Files.exists(dir.resolve("goldens.safetensors")))
      fail(
          "missing PEFT goldens "
              + dir
              + ": run `python3 test-data/lora/make_peft_goldens.py test-data/parity/gqa"
              + " test-data/lora` on a machine with torch, transformers and peft, and commit"
              + " test-data/lora/");
    return dir;
  }

  /** A PEFT case: its folder, the base (test-data/parity/gqa, F32) and PEFT's adapter, loaded. */
  record PeftCase(Path dir, LlamaModel base, LoraAdapters adapters) {
    static PeftCase load(String name) throws Exception {
      Path dir = caseDir(name);
      LlamaModel base =
          HfCheckpoint.load(TestData.dir("parity").resolve("gqa"), DType.F32, Device.CPU);
      return new PeftCase(dir, base, PeftAdapter.load(dir, base.config(), Device.CPU));
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"gqa_all", "gqa_rs_save"})
  void logitsMatchPeft(String name) throws Exception {
    PeftCase c = PeftCase.load(name);
    try (SafetensorsFile g = SafetensorsFile.open(c.dir().resolve("goldens.safetensors"));
        Scope s = Scope.open();
        Grad.Guard ng = Grad.inference()) {
      Tensor ids = g.load("input_ids");
      Tensor adapted = c.adapters().applyTo(c.base()).forward(ids, null);
      Tensor merged = c.adapters().merge(c.base()).forward(ids, null);
      assertArrayEquals(g.info("logits_adapter").shape(), adapted.shape());
      double dA = adapted.sub(g.load("logits_adapter")).abs().max().item();
      double dM = merged.sub(g.load("logits_merged")).abs().max().item();
      System.out.printf("peft %s: max |dlogits| adapter %.3g, merged %.3g%n", name, dA, dM);
      assertTrue(dA <= TOLERANCE, name + ": base + adapter differs from PEFT by " + dA);
      assertTrue(dM <= TOLERANCE, name + ": merged differs from PEFT's merge_and_unload by " + dM);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"gqa_all", "gqa_rs_save"})
  void hanlinWritesPeftsKeysAndConfig(String name) throws Exception {
    PeftCase c = PeftCase.load(name);
    Path out = tmp.resolve(name);
    PeftAdapter.save(c.adapters(), out, "test-data/parity/gqa");
    try (SafetensorsFile peft = SafetensorsFile.open(c.dir().resolve(PeftAdapter.WEIGHTS));
        SafetensorsFile ours = SafetensorsFile.open(out.resolve(PeftAdapter.WEIGHTS))) {
      assertEquals(new TreeSet<>(peft.names()), new TreeSet<>(ours.names()));
    }
    ObjectMapper json = new ObjectMapper();
    JsonNode p = json.readTree(c.dir().resolve(PeftAdapter.CONFIG).toFile());
    JsonNode o = json.readTree(out.resolve(PeftAdapter.CONFIG).toFile());
    for (String k :
        new String[] {
          "peft_type", "task_type", "r", "lora_alpha", "use_rslora", "bias", "fan_in_fan_out"
        }) assertEquals(p.get(k).asText(), o.get(k).asText(), k);
    assertEquals(
        new TreeSet<>(texts(p.get("target_modules"))),
        new TreeSet<>(texts(o.get("target_modules"))));
    assertEquals(
        new TreeSet<>(texts(p.get("modules_to_save"))),
        new TreeSet<>(texts(o.get("modules_to_save"))));
  }

  static java.util.List<String> texts(JsonNode a) {
    java.util.List<String> l = new java.util.ArrayList<>();
    if (a != null && a.isArray()) a.forEach(x -> l.add(x.asText()));
    return l;
  }
}
