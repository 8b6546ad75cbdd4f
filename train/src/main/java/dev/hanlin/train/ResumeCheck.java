package dev.hanlin.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/**
 * Whether a checkpoint may be resumed under the run's config. A checkpoint carries its model's
 * {@code config.json} and the resolved {@code config.yaml} it was saved with: a model of another
 * shape, or another tokenizer, is refused (resuming would train the checkpoint's model and silently
 * ignore the config); other differences (data, learning rate, ...) are allowed and listed, so that
 * a resume never changes a run without a word.
 */
final class ResumeCheck {
  private ResumeCheck() {}

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  /** Keys that differ between runs of the same job by design. */
  private static final Set<String> EXPECTED_TO_DIFFER =
      Set.of("overwrite_output_dir", "resume_from_checkpoint", "stop_after_steps");

  /** Keys whose change means the data after the cursor is not the data the run started on. */
  private static final Set<String> DATA_KEYS =
      Set.of(
          "train_files",
          "validation_files",
          "validation_split_percentage",
          "text_field",
          "data_dir",
          "block_size",
          "seed",
          "sft");

  /**
   * Refuses {@code dir} when its model's shape differs from {@code expected} (null: not checked, as
   * for a LoRA checkpoint, which holds no config.json) or its tokenizer differs from {@code
   * tokenizer}; prints the other config keys that differ.
   */
  static void check(
      Path dir,
      LlamaConfig expected,
      String resolvedYaml,
      PretrainConfig cfg,
      Tokenizer tokenizer,
      PrintStream err)
      throws IOException {
    String how =
        "; start afresh with --overwrite-output-dir, choose another output_dir, or change the"
            + " config back";
    if (expected != null && Files.exists(dir.resolve("config.json"))) {
      List<String> diff = modelDiff(LlamaConfig.read(dir.resolve("config.json")), expected);
      if (!diff.isEmpty())
        throw new IllegalArgumentException(
            "cannot resume "
                + dir
                + ": its model differs from the one this config builds ("
                + String.join(", ", diff)
                + ")"
                + how);
    }
    Path yaml = dir.resolve("config.yaml");
    if (!Files.exists(yaml)) return;
    Map<String, Object> before = map(YAML.readTree(yaml.toFile()));
    Map<String, Object> now = map(YAML.readTree(resolvedYaml));
    Object oldTok = before.get("tokenizer");
    if (oldTok != null && !oldTok.equals(cfg.tokenizer())) {
      Path old = Path.of(oldTok.toString());
      if (Files.exists(old)) {
        String was = Tokenizer.load(old).fingerprint();
        if (!was.equals(tokenizer.fingerprint()))
          throw new IllegalArgumentException(
              "cannot resume "
                  + dir
                  + ": it was trained with the tokenizer "
                  + old
                  + ", which differs from "
                  + cfg.tokenizer()
                  + how);
      } else
        err.printf(
            "note: %s was trained with the tokenizer %s, which is gone; resuming with %s%n",
            dir, old, cfg.tokenizer());
    }
    List<String> changed = new ArrayList<>();
    boolean data = false;
    Set<String> keys = new TreeSet<>(before.keySet());
    keys.addAll(now.keySet());
    for (String k : keys) {
      if (EXPECTED_TO_DIFFER.contains(k) || k.equals("tokenizer")) continue;
      if (Objects.equals(before.get(k), now.get(k))) continue;
      changed.add(k + ": " + before.get(k) + " -> " + now.get(k));
      data |= DATA_KEYS.contains(k);
    }
    if (changed.isEmpty()) return;
    err.println(
        "note: resuming " + dir + " under a config that differs from the one it was saved with:");
    for (String c : changed) err.println("  " + c);
    if (data)
      err.println(
          "  the data changed: the saved data cursor points into the old data, so what follows is"
              + " not what the original run would have read");
  }

  /** The keys of two model configs that differ (the stored dtype aside), as "key a -> b". */
  static List<String> modelDiff(LlamaConfig saved, LlamaConfig expected) throws IOException {
    JsonNode a = JSON.readTree(saved.toJsonString()), b = JSON.readTree(expected.toJsonString());
    Set<String> keys = new TreeSet<>();
    a.fieldNames().forEachRemaining(keys::add);
    b.fieldNames().forEachRemaining(keys::add);
    List<String> diff = new ArrayList<>();
    for (String k : keys) {
      if (k.equals("torch_dtype") || k.equals("dtype")) continue;
      if (!Objects.equals(a.get(k), b.get(k)))
        diff.add(k + " " + a.get(k) + " in the checkpoint, " + b.get(k) + " in the config");
    }
    return diff;
  }

  private static Map<String, Object> map(JsonNode n) {
    Map<String, Object> m = new LinkedHashMap<>();
    if (!(n instanceof ObjectNode o)) return m;
    for (Iterator<Map.Entry<String, JsonNode>> it = o.fields(); it.hasNext(); ) {
      var e = it.next();
      m.put(e.getKey(), JSON.convertValue(e.getValue(), Object.class));
    }
    return m;
  }
}
