package dev.hanlin.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.config.ConfigException;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link PeftAdapter#loadOnto}: an adapter trained on an extended vocabulary (embed_tokens and
 * lm_head saved with 4,000 rows) grows its 2,130-row base on its own; adapters that cannot be used
 * beside their tokenizer are refused with what to do.
 */
class AdapterVocabTest {
  @TempDir Path tmp;

  static final List<String> TARGETS = List.of("q_proj", "v_proj");

  Path adapter(LlamaModel grown, List<String> save, String name) throws Exception {
    LoraAdapters a = LoraTest.randomized(grown, new LoraConfig(4, 8.0, 0.0, TARGETS, false, save));
    Path dir = tmp.resolve(name);
    PeftAdapter.save(a, dir, "base");
    Tokenizer.export(VocabResizeTest.demoTokenizer(), dir); // 4,000 pieces, as a run exports
    return dir;
  }

  static Tensor ids() {
    long[] v = new long[2 * 12];
    for (int i = 0; i < v.length; i++) v[i] = 3 + (i * 331L) % 3990; // old and new ids
    return Torch.fromLongs(v, 2, 12).retain();
  }

  @Test
  void anAdapterWithGrownSavedModulesGrowsItsBase() throws Exception {
    VocabResizeTest t = new VocabResizeTest();
    t.tmp = tmp;
    Path baseDir = t.baseFolder(false);
    LlamaModel base = HfCheckpoint.load(baseDir, DType.F32, Device.CPU);
    LlamaModel grown = base.resizeTokenEmbeddings(4000);
    LoraAdapters trained =
        LoraTest.randomized(
            grown, new LoraConfig(4, 8.0, 0.0, TARGETS, false, List.of("embed_tokens", "lm_head")));
    Path dir = tmp.resolve("ext");
    PeftAdapter.save(trained, dir, "base");
    Tokenizer.export(VocabResizeTest.demoTokenizer(), dir);

    LlamaModel loaded = PeftAdapter.loadOnto(dir, base, Device.CPU);
    assertEquals(4000, loaded.config().vocabSize());
    LlamaModel expected = trained.applyTo(grown);
    Tensor x = ids();
    assertEquals(0.0, LoraTest.maxDiff(expected, loaded, x), 1e-6);
    // and merged, as merge-lora does
    LlamaModel merged = loaded.lora().merge(loaded);
    assertTrue(LoraTest.maxDiff(expected, merged, x) < 1e-5);
    try (Scope s = Scope.open()) {
      assertEquals(4000, merged.weights().get("lm_head.weight").shape()[0]);
    }
  }

  @Test
  void adaptersThatCannotBeUsedBesideTheirTokenizerAreRefused() throws Exception {
    VocabResizeTest t = new VocabResizeTest();
    t.tmp = tmp;
    LlamaModel base = HfCheckpoint.load(t.baseFolder(false), DType.F32, Device.CPU);
    LlamaModel grown = base.resizeTokenEmbeddings(4000);

    // trained on the extended tokenizer without modules_to_save: 2,130 rows beside 4,000 pieces
    Path none = adapter(base, List.of(), "none");
    var e = assertThrows(ConfigException.class, () -> PeftAdapter.loadOnto(none, base, Device.CPU));
    assertTrue(
        e.getMessage().contains("4000 pieces")
            && e.getMessage().contains("modules_to_save: [embed_tokens, lm_head]"),
        e.getMessage());

    // embed_tokens saved, the untied lm_head not
    Path embedOnly = adapter(grown, List.of("embed_tokens"), "embed-only");
    e =
        assertThrows(
            ConfigException.class, () -> PeftAdapter.loadOnto(embedOnly, base, Device.CPU));
    assertTrue(e.getMessage().contains("saves no lm_head"), e.getMessage());
  }

  @Test
  void aLoraRunOnALargerTokenizerMustSaveTheGrownModules() {
    LoraConfig none = new LoraConfig(4, 8.0, 0.0, TARGETS, false, List.of());
    var e =
        assertThrows(ConfigException.class, () -> none.requireGrownModulesSaved(false, 4200, 4000));
    assertTrue(
        e.getMessage().contains("4200 pieces")
            && e.getMessage().contains("add modules_to_save: [embed_tokens, lm_head]"),
        e.getMessage());
    LoraConfig embed = new LoraConfig(4, 8.0, 0.0, TARGETS, false, List.of("embed_tokens"));
    assertThrows(ConfigException.class, () -> embed.requireGrownModulesSaved(false, 4200, 4000));
    embed.requireGrownModulesSaved(true, 4200, 4000); // tied: one matrix
    new LoraConfig(4, 8.0, 0.0, TARGETS, false, List.of("lm_head", "embed_tokens"))
        .requireGrownModulesSaved(false, 4200, 4000);
  }
}
