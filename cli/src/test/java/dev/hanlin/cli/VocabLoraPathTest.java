package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.PeftAdapter;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Llama2-Chinese team's path through the modes, in process on a tiny model (hidden 32, one layer,
 * the demo's 4,000-piece tokenizer): extend-vocab → resize-vocab → LoRA continued pretraining with
 * modules_to_save → merge-lora → generate; and SFT LoRA → eval --adapter → merge-lora → generate
 * with the merged model's logits equal to base + adapter's.
 */
class VocabLoraPathTest {
  static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path tmp;
  static Path repo, base, ext, corpus;

  /** Runs a mode in process; returns its exit code, and its output in {@code out}. */
  static int cli(StringBuilder out, String... args) {
    PrintStream oldOut = System.out, oldErr = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    PrintStream p = new PrintStream(buf, true, StandardCharsets.UTF_8);
    System.setOut(p);
    System.setErr(p);
    try {
      return Cli.run(args);
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
      String s = buf.toString(StandardCharsets.UTF_8);
      if (out != null) out.append(s);
      oldErr.print(s);
    }
  }

  static void ok(String... args) {
    StringBuilder log = new StringBuilder();
    assertEquals(0, cli(log, args), () -> String.join(" ", args) + "\n" + log);
  }

  /** {@code --mode sft} of {@link #yaml}{@code (out, model, body)}; it must succeed. */
  static void sft(Path out, String model, String body) throws Exception {
    ok("--mode", "sft", "--config", yaml(out, model, body).toString());
  }

  /**
   * {@code --mode merge-lora}: the base {@code model} with {@code adapter} merged into {@code out}.
   */
  static void mergeLora(Path model, Path adapter, Path out) {
    ok(
        "--mode",
        "merge-lora",
        "--model",
        model.toString(),
        "--adapter",
        adapter.toString(),
        "--output",
        out.toString());
  }

  /** The last JSON line a mode printed. */
  static JsonNode json(String... args) throws Exception {
    StringBuilder log = new StringBuilder();
    assertEquals(0, cli(log, args), log::toString);
    List<String> lines = log.toString().lines().toList();
    for (int i = lines.size() - 1; i >= 0; i--)
      if (lines.get(i).startsWith("{")) return JSON.readTree(lines.get(i));
    throw new AssertionError("no JSON in\n" + log);
  }

  @BeforeAll
  static void baseModelAndExtendedTokenizer() throws Exception {
    repo = TinyRun.repo();
    // the base: a tiny random model beside the demo tokenizer it "was trained with"
    base = tmp.resolve("base");
    var c =
        JSON.readTree(
            """
            {"vocab_size": 4000, "hidden_size": 32, "intermediate_size": 64,
             "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
             "max_position_embeddings": 64, "bos_token_id": 1, "eos_token_id": 2}
            """);
    LlamaModel m = LlamaModel.init(LlamaConfig.fromJson(c), 3, DType.F32, Device.CPU);
    HfCheckpoint.save(m, base, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES);
    Tokenizer.export(repo.resolve("configs/demo/tokenizer.model"), base);
    // 600 poems: enough for 200 new merges
    corpus = tmp.resolve("songci-600.txt");
    Files.write(
        corpus, Files.readAllLines(repo.resolve("configs/demo/songci.txt")).subList(0, 600));
    ext = tmp.resolve("ext");
    ok(
        "--mode",
        "extend-vocab",
        "--tokenizer",
        base.resolve("tokenizer.model").toString(),
        "--corpus",
        corpus.toString(),
        "--vocab-size",
        "4200",
        "--no-emoji",
        "--threads",
        "1",
        "--output",
        ext.toString());
    assertEquals(4200, Tokenizer.load(ext).vocabSize());
  }

  static Path yaml(Path out, String model, String body) throws Exception {
    Path f = out.resolveSibling(out.getFileName() + ".yaml");
    Files.writeString(
        f,
        """
        model_name_or_path: %s
        tokenizer: %s
        output_dir: %s
        per_device_train_batch_size: 4
        learning_rate: 1.0e-2
        warmup_steps: 0
        logging_steps: 1
        max_steps: 3
        eval_steps: 0
        save_steps: 0
        block_size: 48
        device: cpu
        %s
        """
            .formatted(model, ext, out, body));
    return f;
  }

  static final String LORA =
      "lora: {r: 4, lora_alpha: 8, lora_dropout: 0.0, target_modules: [q_proj, v_proj, down_proj]";

  /** The first lines of the corpus as {"text": ...} records: continued pretraining via SFT text. */
  static Path textRecords() throws Exception {
    Path f = tmp.resolve("poems.jsonl");
    if (Files.exists(f)) return f;
    List<String> lines = new ArrayList<>();
    for (String l : Files.readAllLines(corpus).subList(0, 32))
      lines.add(JSON.writeValueAsString(Map.of("text", l)));
    Files.write(f, lines);
    return f;
  }

  @Test
  void extendResizeLoraPretrainMergeGenerate() throws Exception {
    Path resized = tmp.resolve("resized");
    ok(
        "--mode",
        "resize-vocab",
        "--model",
        base.toString(),
        "--tokenizer",
        ext.toString(),
        "--output",
        resized.toString());
    assertEquals(
        4200, JSON.readTree(resized.resolve("config.json").toFile()).get("vocab_size").asInt());

    // LoRA on the un-resized base with the larger tokenizer and no modules_to_save: stops at start
    Path refused = tmp.resolve("refused");
    StringBuilder log = new StringBuilder();
    String data = "train_files: [" + textRecords() + "]\nsft: {format: text}\n";
    assertEquals(
        1,
        cli(
            log,
            "--mode",
            "sft",
            "--config",
            yaml(refused, base.toString(), data + LORA + "}").toString()));
    assertTrue(
        log.toString().contains("add modules_to_save: [embed_tokens, lm_head]"), log.toString());
    assertFalse(Files.exists(refused.resolve(PeftAdapter.WEIGHTS)));

    // continued pretraining with LoRA on the resized model, saving the grown modules
    Path adapter = tmp.resolve("pt-adapter");
    sft(adapter, resized.toString(), data + LORA + ", modules_to_save: [embed_tokens, lm_head]}");
    assertTrue(Files.exists(adapter.resolve("tokenizer.model")));

    // merged onto the resized base, and onto the original 4,000-row base (grown on its own): the
    // saved modules replace every grown row, so the two are the same model
    Path merged = tmp.resolve("pt-merged"), mergedFromBase = tmp.resolve("pt-merged-base");
    mergeLora(resized, adapter, merged);
    mergeLora(base, adapter, mergedFromBase);
    assertArrayEquals(
        Files.readAllBytes(merged.resolve("model.safetensors")),
        Files.readAllBytes(mergedFromBase.resolve("model.safetensors")));
    assertEquals(4200, Tokenizer.load(merged).vocabSize());
    assertEquals(
        4200, JSON.readTree(merged.resolve("config.json").toFile()).get("vocab_size").asInt());

    // generate from the merged folder, and from the base with the adapter: the same greedy ids
    List<String> gen =
        List.of(
            "--mode",
            "generate",
            "--prompt",
            "春风",
            "--max-new-tokens",
            "8",
            "--device",
            "cpu",
            "--json");
    JsonNode a = json(cat(gen, "--model", merged.toString()));
    JsonNode b = json(cat(gen, "--model", base.toString(), "--adapter", adapter.toString()));
    assertEquals(8, a.get("output_ids").size(), a.toString());
    assertEquals(a.get("output_ids"), b.get("output_ids"));
    assertEquals(a.get("prompt_ids"), b.get("prompt_ids"));
  }

  static String[] cat(List<String> a, String... more) {
    List<String> l = new ArrayList<>(a);
    l.addAll(List.of(more));
    return l.toArray(String[]::new);
  }

  @Test
  void sftLoraEvalMergeGenerateWithMergedLogitsEqualToBasePlusAdapter() throws Exception {
    // SFT LoRA on the 4,000-row base with the 4,200-piece tokenizer: the run grows the vocabulary
    Path adapter = tmp.resolve("sft-adapter");
    Path records = repo.resolve("test-data/sft/lunyu_qa.jsonl");
    sft(
        adapter,
        base.toString(),
        "train_files: ["
            + records
            + "]\nsft: {format: prompt_response}\n"
            + LORA
            + ", modules_to_save: [embed_tokens, lm_head]}");
    List<String> eval =
        List.of(
            "--mode",
            "eval",
            "--sft-data",
            records.toString(),
            "--block-size",
            "48",
            "--device",
            "cpu",
            "--json");
    JsonNode withAdapter =
        json(cat(eval, "--model", base.toString(), "--adapter", adapter.toString()));
    Path merged = tmp.resolve("sft-merged");
    mergeLora(base, adapter, merged);
    JsonNode fromMerged = json(cat(eval, "--model", merged.toString()));
    assertEquals(withAdapter.get("tokens"), fromMerged.get("tokens"));
    double la = withAdapter.get("loss").asDouble();
    assertEquals(la, fromMerged.get("loss").asDouble(), 1e-5 * la);

    // logits: merged vs base + adapter, over old and new ids (fp32 on CPU, tolerance 1e-4)
    LlamaModel adapted =
        PeftAdapter.loadOnto(adapter, HfCheckpoint.load(base, DType.F32, Device.CPU), Device.CPU);
    LlamaModel m = HfCheckpoint.load(merged, DType.F32, Device.CPU);
    LlamaModel plain = HfCheckpoint.load(base, DType.F32, Device.CPU).resizeTokenEmbeddings(4200);
    long[] ids = new long[2 * 24];
    for (int i = 0; i < ids.length; i++) ids[i] = 3 + (i * 577L) % 4195;
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.inference()) {
      Tensor x = Torch.fromLongs(ids, 2, 24);
      Tensor y = adapted.forward(x, null);
      double diff = y.sub(m.forward(x, null)).abs().max().item();
      double changed = y.sub(plain.forward(x, null)).abs().max().item();
      System.out.printf("|merged - (base + adapter)| %.3g, |adapter - base| %.3g%n", diff, changed);
      assertTrue(diff < 1e-4, "merged differs from base + adapter by " + diff);
      assertTrue(changed > 1e-3, "training changed the output by only " + changed);
    }
    JsonNode gen =
        json(
            "--mode",
            "generate",
            "--model",
            merged.toString(),
            "--prompt",
            "子曰：",
            "--max-new-tokens",
            "6",
            "--device",
            "cpu",
            "--json");
    assertEquals(6, gen.get("output_ids").size(), gen.toString());
  }
}
