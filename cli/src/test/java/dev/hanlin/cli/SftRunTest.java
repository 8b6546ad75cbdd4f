package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.LoraAdapters;
import dev.hanlin.model.PeftAdapter;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whole {@code --mode sft} runs in child JVMs on the committed Analects fixtures: full SFT on the
 * chat format exports an HF folder and evaluates response tokens; LoRA on top of it, stopped and
 * resumed, gives bitwise the losses and adapter of an uninterrupted run; {@code --mode merge-lora}
 * gives a model equal to base + adapter.
 */
class SftRunTest {
  @TempDir static Path shared;
  static Path full;

  static Path yaml(Path dir, String body) throws IOException {
    Path repo = TinyRun.repo();
    String y =
        """
        model_config: %s
        config_overrides: {hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2}
        tokenizer: %s
        output_dir: %s
        per_device_train_batch_size: 4
        gradient_accumulation_steps: 2
        learning_rate: 3.0e-3
        warmup_steps: 1
        logging_steps: 1
        device: cpu
        %s
        """
            .formatted(
                repo.resolve("configs/demo/tiny-llama.json"),
                repo.resolve("configs/demo/tokenizer.model"),
                dir,
                body.replace("$REPO", repo.toString()));
    // config_overrides shapes a model built from model_config; with a model folder it is an error
    if (body.contains("model_name_or_path:")) y = y.replaceFirst("config_overrides: .*\n", "");
    Path f = dir.resolveSibling(dir.getFileName() + ".yaml");
    Files.writeString(f, y);
    return f;
  }

  static int run(Path log, String... args) throws Exception {
    int code = TinyRun.finish(TinyRun.start(log, args), log, 4);
    if (code != 0) System.err.println(Files.readString(log));
    return code;
  }

  static List<JsonNode> metrics(Path out, String type) throws IOException {
    List<JsonNode> l = new ArrayList<>();
    for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
      JsonNode n = PretrainRunTest.JSON.readTree(line);
      if (n.get("type").asText().equals(type)) l.add(n);
    }
    return l;
  }

  @BeforeAll
  static void fullSftOnChat() throws Exception {
    full = shared.resolve("full");
    Path y =
        yaml(
            full,
            """
            train_files: [$REPO/test-data/sft/lunyu_chat.csv]
            validation_split_percentage: 10
            block_size: 160
            max_steps: 3
            eval_steps: 0
            sft: {format: chat, group_by_length: true}
            """);
    assertEquals(0, run(shared.resolve("full.log"), "--mode", "sft", "--config", y.toString()));
  }

  @Test
  void fullSftExportsAnHfFolderAndEvaluatesResponseTokens() throws Exception {
    assertTrue(Files.exists(full.resolve("config.json")));
    assertTrue(Files.exists(full.resolve("model.safetensors")));
    assertTrue(Files.exists(full.resolve("tokenizer.model")));
    List<JsonNode> eval = metrics(full, "eval");
    assertEquals(1, eval.size());
    long tokens = eval.getFirst().get("tokens").asLong();
    assertTrue(tokens > 0 && tokens < 3 * 160, "response tokens only, got " + tokens);
    assertEquals(3, metrics(full, "train").size());
    assertTrue(
        Files.readString(shared.resolve("full.log")).contains("25 training and 3 validation"));
  }

  static String lora(String extra) {
    return """
        model_name_or_path: %s
        train_files: [$REPO/test-data/sft/lunyu_qa.jsonl]
        block_size: 64
        max_steps: 6
        save_steps: 3
        sft: {format: prompt_response}
        lora: {r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: [q_proj, v_proj, down_proj], modules_to_save: [lm_head]}
        %s
        """
        .formatted(full, extra);
  }

  static List<String> losses(Path out) throws IOException {
    return metrics(out, "train").stream()
        .map(n -> n.get("step").asText() + ":" + n.get("loss").asText())
        .toList();
  }

  @Test
  void loraStoppedAndResumedEqualsUninterruptedAndMergeEqualsBasePlusAdapter(@TempDir Path tmp)
      throws Exception {
    Path a = tmp.resolve("a"), b = tmp.resolve("b");
    assertEquals(
        0, run(tmp.resolve("a.log"), "--mode", "sft", "--config", yaml(a, lora("")).toString()));
    Path yb = yaml(b, lora("stop_after_steps: 3"));
    assertEquals(0, run(tmp.resolve("b.log"), "--mode", "sft", "--config", yb.toString()));
    assertEquals(3, losses(b).size());
    Files.writeString(yb, Files.readString(yb).replace("stop_after_steps: 3", ""));
    assertEquals(0, run(tmp.resolve("b.log"), "--mode", "sft", "--config", yb.toString()));
    assertTrue(Files.readString(tmp.resolve("b.log")).contains("resuming from"));
    assertEquals(losses(a), losses(b));
    // only the adapter is exported; it is bitwise that of the uninterrupted run
    assertTrue(Files.exists(a.resolve(PeftAdapter.CONFIG)));
    assertTrue(!Files.exists(a.resolve("model.safetensors")));
    assertArrayEquals(
        Files.readAllBytes(a.resolve(PeftAdapter.WEIGHTS)),
        Files.readAllBytes(b.resolve(PeftAdapter.WEIGHTS)));
    assertTrue(Files.readString(tmp.resolve("a.log")).contains("trainable parameters"));

    Path merged = tmp.resolve("merged");
    assertEquals(
        0,
        run(
            tmp.resolve("merge.log"),
            "--mode",
            "merge-lora",
            "--model",
            full.toString(),
            "--adapter",
            a.toString(),
            "--output",
            merged.toString()));
    LlamaModel base = HfCheckpoint.load(full, DType.F32, Device.CPU);
    LoraAdapters adapter = PeftAdapter.load(a, base.config(), Device.CPU);
    LlamaModel m = HfCheckpoint.load(merged, DType.F32, Device.CPU);
    assertTrue(Files.exists(merged.resolve("tokenizer.model")));
    long[] ids = new long[2 * 24];
    for (int i = 0; i < ids.length; i++) ids[i] = 3 + (i * 131L) % 3990;
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.inference()) {
      Tensor x = Torch.fromLongs(ids, 2, 24);
      Tensor withAdapter = adapter.applyTo(base).forward(x, null);
      double changed = withAdapter.sub(base.forward(x, null)).abs().max().item();
      double diff = withAdapter.sub(m.forward(x, null)).abs().max().item();
      System.out.printf(
          "merge-lora: |adapter - base| %.3g, |merged - adapter| %.3g%n", changed, diff);
      assertTrue(changed > 1e-3, "training changed the adapter's output by only " + changed);
      assertTrue(diff < 1e-4, "merged model differs from base + adapter by " + diff);
    }
    // --mode eval on the SFT records (response tokens only): base + adapter equals the merged model
    String records = TinyRun.repo().resolve("test-data/sft/lunyu_qa.jsonl").toString();
    List<String> common =
        List.of("--mode", "eval", "--sft-data", records, "--block-size", "64", "--device", "cpu");
    JsonNode withAdapter =
        evalJson(
            tmp.resolve("ea.log"), common, "--model", full.toString(), "--adapter", a.toString());
    JsonNode fromMerged = evalJson(tmp.resolve("em.log"), common, "--model", merged.toString());
    JsonNode baseOnly = evalJson(tmp.resolve("eb.log"), common, "--model", full.toString());
    assertEquals(withAdapter.get("tokens").asLong(), fromMerged.get("tokens").asLong());
    assertTrue(withAdapter.get("tokens").asLong() > 0);
    double la = withAdapter.get("loss").asDouble(), lm = fromMerged.get("loss").asDouble();
    assertEquals(la, lm, 1e-4 * la);
    assertTrue(
        Math.abs(baseOnly.get("loss").asDouble() - la) > 1e-3, "the adapter changed nothing");
  }

  /** Runs {@code --mode eval ... --json} and returns its JSON line. */
  static JsonNode evalJson(Path log, List<String> common, String... more) throws Exception {
    List<String> args = new ArrayList<>(common);
    args.addAll(List.of(more));
    args.add("--json");
    assertEquals(0, run(log, args.toArray(String[]::new)), () -> DistributedRunTest.read(log));
    List<String> lines = Files.readAllLines(log);
    for (int i = lines.size() - 1; i >= 0; i--)
      if (lines.get(i).startsWith("{")) return new ObjectMapper().readTree(lines.get(i));
    throw new AssertionError("no JSON in " + log);
  }

  /**
   * Llama2-Chinese's LoRA recipe on a 4-bit base ({@code --load_in_bits 4}, here the flat key): the
   * base's projections are NF4, the recomputing backward is switched on, and a run stopped and
   * resumed gives bitwise the uninterrupted run's losses and adapter (the base is quantized again,
   * deterministically, on resume).
   */
  @Test
  void fourBitBaseStoppedAndResumedEqualsUninterrupted(@TempDir Path tmp) throws Exception {
    Path a = tmp.resolve("a"), b = tmp.resolve("b");
    assertEquals(
        0,
        run(
            tmp.resolve("a.log"),
            "--mode",
            "sft",
            "--config",
            yaml(a, lora("load_in_bits: 4")).toString()));
    String log = Files.readString(tmp.resolve("a.log"));
    assertTrue(log.contains("(14 projections in 4 bits, the rest f32)"), log);
    assertTrue(log.contains("gradient checkpointing is on"), log);
    Path yb = yaml(b, lora("load_in_bits: 4\nstop_after_steps: 3"));
    assertEquals(0, run(tmp.resolve("b.log"), "--mode", "sft", "--config", yb.toString()));
    Files.writeString(yb, Files.readString(yb).replace("stop_after_steps: 3", ""));
    assertEquals(0, run(tmp.resolve("b.log"), "--mode", "sft", "--config", yb.toString()));
    assertTrue(Files.readString(tmp.resolve("b.log")).contains("resuming from"));
    assertEquals(6, losses(a).size());
    assertEquals(losses(a), losses(b));
    assertArrayEquals(
        Files.readAllBytes(a.resolve(PeftAdapter.WEIGHTS)),
        Files.readAllBytes(b.resolve(PeftAdapter.WEIGHTS)));
    // the adapter is a plain PEFT adapter: no trace of the quantized base in its config
    assertTrue(!Files.readString(a.resolve(PeftAdapter.CONFIG)).contains("load_in_bits"));
  }

  @Test
  void loraDropoutWithGradientCheckpointingEqualsThePlainBackward(@TempDir Path tmp)
      throws Exception {
    // the recompute replays each block's random state, so it draws the forward's dropout masks
    Path plain = tmp.resolve("plain"), ck = tmp.resolve("ck");
    assertEquals(
        0,
        run(
            tmp.resolve("plain.log"),
            "--mode",
            "sft",
            "--config",
            yaml(plain, lora("stop_after_steps: 3")).toString()));
    assertEquals(
        0,
        run(
            tmp.resolve("ck.log"),
            "--mode",
            "sft",
            "--config",
            yaml(ck, lora("stop_after_steps: 3\ngradient_checkpointing: true")).toString()));
    List<JsonNode> a = metrics(plain, "train"), b = metrics(ck, "train");
    assertEquals(3, a.size());
    assertEquals(3, b.size());
    for (int i = 0; i < 3; i++) {
      double la = a.get(i).get("loss").asDouble(), lb = b.get(i).get("loss").asDouble();
      assertEquals(la, lb, 1e-5 * la, "step " + (i + 1));
    }
  }

  @Test
  void accumulationWindowEqualsOneLargeBatch(@TempDir Path tmp) throws Exception {
    // the loss is normalized by the labelled tokens of the whole window, so 2 x 2 samples give
    // the step of 1 x 4 samples (the same samples: the order does not depend on the batch size)
    String body =
        """
        train_files: [$REPO/test-data/sft/lunyu_qa.jsonl]
        block_size: 64
        max_steps: 2
        save_steps: 0
        sft: {format: prompt_response}
        """;
    Path one = tmp.resolve("one"), two = tmp.resolve("two");
    Path y1 = yaml(one, body + "per_device_train_batch_size: 4\ngradient_accumulation_steps: 1\n");
    Path y2 = yaml(two, body + "per_device_train_batch_size: 2\ngradient_accumulation_steps: 2\n");
    Path packed = tmp.resolve("packed");
    Path y3 =
        yaml(
            packed,
            body.replace("prompt_response}", "prompt_response, packing: true}")
                + "per_device_train_batch_size: 4\ngradient_accumulation_steps: 1\n");
    // and so does recomputing each block in backward (gradient checkpointing) on packed rows
    Path packedCk = tmp.resolve("packed-ck");
    Path y5 =
        yaml(
            packedCk,
            body.replace("prompt_response}", "prompt_response, packing: true}")
                + "gradient_checkpointing: true\n"
                + "per_device_train_batch_size: 4\ngradient_accumulation_steps: 1\n");
    for (Path y : List.of(y1, y2, y3, y5))
      Files.writeString(
          y,
          Files.readString(y)
              .replace("per_device_train_batch_size: 4\ngradient_accumulation_steps: 2\n", ""));
    assertEquals(0, run(tmp.resolve("one.log"), "--mode", "sft", "--config", y1.toString()));
    assertEquals(0, run(tmp.resolve("two.log"), "--mode", "sft", "--config", y2.toString()));
    // packing the same 4 samples into shared rows, attention kept within each, changes nothing
    assertEquals(0, run(tmp.resolve("packed.log"), "--mode", "sft", "--config", y3.toString()));
    assertEquals(0, run(tmp.resolve("packed-ck.log"), "--mode", "sft", "--config", y5.toString()));
    // two processes of 2 samples each: every rank divides by the labelled count of both
    Path ddp = tmp.resolve("ddp");
    Path y4 = yaml(ddp, body + "per_device_train_batch_size: 2\ngradient_accumulation_steps: 1\n");
    Files.writeString(
        y4,
        Files.readString(y4)
            .replace("per_device_train_batch_size: 4\ngradient_accumulation_steps: 2\n", ""));
    launchTwo(y4, tmp.resolve("ddp.log"));
    List<JsonNode> a = metrics(one, "train");
    assertEquals(2, a.size());
    for (Path other : List.of(two, packed, packedCk, ddp)) {
      List<JsonNode> b = metrics(other, "train");
      for (int i = 0; i < 2; i++) {
        double la = a.get(i).get("loss").asDouble(), lb = b.get(i).get("loss").asDouble();
        assertEquals(la, lb, 1e-5 * la, other.getFileName() + " step " + (i + 1));
      }
    }
  }

  /** {@code bin/launch --nproc-per-node 2 -- --mode sft --config y} (Gloo), to its end. */
  static void launchTwo(Path y, Path log) throws Exception {
    List<String> cmd =
        List.of(
            "bash",
            TinyRun.repo() + "/bin/launch",
            "--nproc-per-node",
            "2",
            "--master-port",
            "" + DistributedRunTest.freePort(),
            "--",
            "--mode",
            "sft",
            "--config",
            y.toString());
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
    pb.environment().put("HANLIN_CLASSPATH", System.getProperty("java.class.path"));
    pb.environment().keySet().removeIf(k -> k.startsWith("SLURM_"));
    Process p =
        pb.redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .start();
    assertTrue(p.waitFor(4, TimeUnit.MINUTES), "2-process run did not finish");
    assertEquals(0, p.exitValue(), () -> DistributedRunTest.read(log));
  }

  /**
   * LoRA on a 4-bit base, data-parallel: two processes of 2 samples each take the step of one
   * process of 4 (each rank quantizes the same base; only the replicated adapters are reduced).
   */
  @Test
  void fourBitBaseOnTwoProcessesEqualsOne(@TempDir Path tmp) throws Exception {
    String body =
        """
        model_name_or_path: %s
        train_files: [$REPO/test-data/sft/lunyu_qa.jsonl]
        block_size: 64
        max_steps: 2
        save_steps: 0
        sft: {format: prompt_response}
        lora: {r: 4, lora_alpha: 8, lora_dropout: 0.0, target_modules: [q_proj, v_proj, down_proj], load_in_bits: 4}
        """
            .formatted(full);
    Path one = tmp.resolve("one"), two = tmp.resolve("two");
    Path y1 = yaml(one, body + "per_device_train_batch_size: 4\ngradient_accumulation_steps: 1\n");
    Path y2 = yaml(two, body + "per_device_train_batch_size: 2\ngradient_accumulation_steps: 1\n");
    for (Path y : List.of(y1, y2))
      Files.writeString(
          y,
          Files.readString(y)
              .replace("per_device_train_batch_size: 4\ngradient_accumulation_steps: 2\n", ""));
    assertEquals(0, run(tmp.resolve("one.log"), "--mode", "sft", "--config", y1.toString()));
    launchTwo(y2, tmp.resolve("two.log"));
    assertTrue(DistributedRunTest.read(tmp.resolve("two.log")).contains("in 4 bits"));
    List<JsonNode> a = metrics(one, "train"), b = metrics(two, "train");
    assertEquals(2, a.size());
    assertEquals(2, b.size());
    for (int i = 0; i < 2; i++) {
      double la = a.get(i).get("loss").asDouble(), lb = b.get(i).get("loss").asDouble();
      assertEquals(la, lb, 1e-5 * la, "step " + (i + 1));
      double ga = a.get(i).get("grad_norm").asDouble(), gb = b.get(i).get("grad_norm").asDouble();
      assertEquals(ga, gb, 1e-4 * ga, "grad norm, step " + (i + 1));
    }
  }

  @Test
  void configErrorsNameTheSftKeyAndLine(@TempDir Path tmp) throws Exception {
    var example =
        dev.hanlin.train.PretrainConfig.load(
            TinyRun.repo().resolve("configs/sft-example.yaml"), new java.util.HashMap<>());
    assertEquals("prompt_response", example.sft().format());
    assertEquals(8, example.lora().r());
    for (String line : Files.readAllLines(TinyRun.repo().resolve("configs/sft-example.yaml")))
      if (line.matches("^\\s*[a-z_0-9]+:.*") && !line.trim().startsWith("#"))
        assertTrue(line.contains("#") || line.trim().endsWith(":"), "uncommented key: " + line);
    Path y = yaml(tmp.resolve("bad"), "train_files: [x.jsonl]\nsft:\n  prompt_feild: q\n");
    var e =
        org.junit.jupiter.api.Assertions.assertThrows(
            RuntimeException.class,
            () -> dev.hanlin.train.PretrainConfig.load(y, new java.util.HashMap<>()));
    assertTrue(e.getMessage().contains("prompt_feild"), e.getMessage());
    assertTrue(e.getMessage().contains("did you mean 'prompt_field'"), e.getMessage());
    Path l =
        yaml(
            tmp.resolve("badlora"),
            "train_files: [x.jsonl]\nsft: {}\nlora:\n  target_modules: [qkv]\n");
    var le =
        org.junit.jupiter.api.Assertions.assertThrows(
            RuntimeException.class,
            () -> dev.hanlin.train.PretrainConfig.load(l, new java.util.HashMap<>()));
    assertTrue(le.getMessage().contains("unknown target module 'qkv'"), le.getMessage());
  }
}
