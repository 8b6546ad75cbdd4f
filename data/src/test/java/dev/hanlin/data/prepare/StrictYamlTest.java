package dev.hanlin.data.prepare;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.config.ConfigException;
import dev.hanlin.data.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StrictYamlTest {
  @TempDir Path dir;

  @Test
  void unknownKeyNamesLineAndSuggestsTheClosest() throws Exception {
    Path y =
        Files.writeString(
            dir.resolve("c.yaml"),
            "tokenizer: t.model\noutput_dir: out\nmax_train_sample: 5\ntrain_files: [a.txt]\n");
    var e = assertThrows(ConfigException.class, () -> PrepareConfig.load(y, Map.of()));
    assertTrue(e.getMessage().startsWith(y + ":3: unknown key 'max_train_sample'"), e.getMessage());
    assertTrue(e.getMessage().contains("did you mean 'max_train_samples'?"), e.getMessage());
  }

  @Test
  void wrongTypeNamesTheKey() throws Exception {
    Path y =
        Files.writeString(
            dir.resolve("c.yaml"),
            "tokenizer: t.model\noutput_dir: out\ntrain_files: [a.txt]\nworkers: many\n");
    var e = assertThrows(ConfigException.class, () -> PrepareConfig.load(y, Map.of()));
    assertTrue(e.getMessage().contains(":4: key 'workers'"), e.getMessage());
  }

  @Test
  void invalidValuesAndDuplicatesAreErrors() throws Exception {
    Path y =
        Files.writeString(
            dir.resolve("c.yaml"),
            "tokenizer: t\noutput_dir: o\ntrain_files: [a]\nvalidation_split_percentage: 120\n");
    var e = assertThrows(ConfigException.class, () -> PrepareConfig.load(y, Map.of()));
    assertTrue(e.getMessage().contains("validation_split_percentage"), e.getMessage());
    Path d =
        Files.writeString(
            dir.resolve("d.yaml"),
            "tokenizer: t\noutput_dir: o\ntrain_files: [a]\nseed: 1\nseed: 2\n");
    e = assertThrows(ConfigException.class, () -> PrepareConfig.load(d, Map.of()));
    assertTrue(e.getMessage().contains("seed"), e.getMessage());
  }

  @Test
  void flagsOverrideTheFile() throws Exception {
    Path y =
        Files.writeString(
            dir.resolve("c.yaml"), "tokenizer: t\noutput_dir: o\ntrain_files: [a]\nseed: 1\n");
    PrepareConfig c = PrepareConfig.load(y, Map.of("seed", 9L, "train_files", List.of("b")));
    assertEquals(9L, c.seed());
    assertEquals(List.of("b"), c.trainFiles());
    assertEquals("o", c.outputDir());
  }

  @Test
  void flagsCanSupplyAKeyTheFileLacksOrFixAValue() throws Exception {
    // as with HF's --output_dir: a required key may come from the command line alone
    Path y = Files.writeString(dir.resolve("c.yaml"), "tokenizer: t\ntrain_files: [a]\n");
    assertEquals("o", PrepareConfig.load(y, Map.of("output_dir", "o")).outputDir());
    Path bad =
        Files.writeString(
            dir.resolve("b.yaml"),
            "tokenizer: t\noutput_dir: o\ntrain_files: [a]\nvalidation_split_percentage: 120\n");
    assertEquals(
        5.0,
        PrepareConfig.load(bad, Map.of("validation_split_percentage", 5.0))
            .validationSplitPercentage());
    // still missing after the flags: the error says so, naming the file
    var e = assertThrows(ConfigException.class, () -> PrepareConfig.load(y, Map.of("seed", 3L)));
    assertTrue(
        e.getMessage().contains("output_dir") && e.getMessage().contains(y.toString()),
        e.getMessage());
    // an unknown key in the file is reported with its line even when flags are given
    Path typo = Files.writeString(dir.resolve("t.yaml"), "tokenizer: t\ntrain_filez: [a]\n");
    e =
        assertThrows(
            ConfigException.class, () -> PrepareConfig.load(typo, Map.of("output_dir", "o")));
    assertTrue(e.getMessage().startsWith(typo + ":2: unknown key 'train_filez'"), e.getMessage());
  }

  @Test
  void theCommentedExampleConfigLoads() {
    Path example = Fixtures.testData().getParent().resolve("configs/prepare-example.yaml");
    PrepareConfig c = PrepareConfig.load(example, Map.of());
    assertEquals("text", c.textField());
  }

  @Test
  void aMissingFileIsNamedAsSuch() {
    var e =
        assertThrows(
            ConfigException.class, () -> PrepareConfig.load(dir.resolve("missing.yaml"), Map.of()));
    assertTrue(
        e.getMessage().equals("config " + dir.resolve("missing.yaml") + ": no such file"),
        e.getMessage());
  }

  @Test
  void aFractionForAnIntegerKeyIsAnErrorAtItsLine() throws Exception {
    Path y =
        Files.writeString(
            dir.resolve("c.yaml"), "tokenizer: t\noutput_dir: o\ntrain_files: [a]\nworkers: 2.5\n");
    var e = assertThrows(ConfigException.class, () -> PrepareConfig.load(y, Map.of()));
    assertEquals(y + ":4: key 'workers': expected a whole number, got 2.5", e.getMessage());
  }

  @Test
  void aTabUsedAsIndentationIsReportedAtItsOwnLine() throws Exception {
    Path y =
        Files.writeString(
            dir.resolve("c.yaml"), "tokenizer: t\noutput_dir: o\ntrain_files:\n\t- a\n");
    var e = assertThrows(ConfigException.class, () -> PrepareConfig.load(y, Map.of()));
    assertTrue(e.getMessage().startsWith(y + ":4: "), e.getMessage());
    assertTrue(e.getMessage().contains("TAB"), e.getMessage());
  }

  @Test
  void aFailedCheckOfTheRecordPointsAtTheKeysLine() throws Exception {
    Path y =
        Files.writeString(
            dir.resolve("c.yaml"),
            "tokenizer: t\nshard_tokens: 0\noutput_dir: o\ntrain_files: [a]\nseed: 1\n");
    var e = assertThrows(ConfigException.class, () -> PrepareConfig.load(y, Map.of()));
    assertTrue(e.getMessage().startsWith(y + ":2: "), e.getMessage());
    assertTrue(e.getMessage().contains("'shard_tokens' must be >= 1"), e.getMessage());
  }

  @Test
  void aNullFlagRestoresTheDefault() throws Exception {
    Path y =
        Files.writeString(
            dir.resolve("c.yaml"), "tokenizer: t\noutput_dir: o\ntrain_files: [a]\nseed: 1\n");
    Map<String, Object> unset = new java.util.HashMap<>();
    unset.put("seed", null);
    assertEquals(42L, PrepareConfig.load(y, unset).seed());
  }
}
