package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.train.PretrainConfig;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * How a run starts, stops, resumes and what it leaves, run in this JVM through {@link Cli#run}: a
 * rejected run leaves output_dir byte for byte as it was, overwrite_output_dir removes the earlier
 * run's outputs and nothing else, a checkpoint with NaN weights or of another model shape is
 * refused, a finished run resumed writes its final eval once, a run that ends on skipped steps
 * fails, and the demo and example configs do not trip a newcomer.
 */
class RunLifecycleCliTest {
  static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path shared;

  /** A tiny run on the demo text; data prepared once in {@code shared/data}. */
  static Path config(Path out, int steps, String extra) throws IOException {
    return TinyRun.config(
        out,
        "hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2,"
            + " num_key_value_heads: 1",
        shared.resolve("data"),
        """
        max_steps: %d
        per_device_train_batch_size: 2
        learning_rate: 3.0e-3
        warmup_steps: 1
        eval_steps: 0
        max_eval_batches: 1
        save_steps: 2
        save_total_limit: 3
        logging_steps: 1
        device: cpu
        %s
        """
            .formatted(steps, extra));
  }

  record Result(int code, String log) {}

  /** Runs the CLI in this JVM, returning its exit code and what it printed on stderr. */
  static synchronized Result cli(String... args) {
    PrintStream err = System.err;
    var buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      int code = Cli.run(args);
      return new Result(code, buf.toString(StandardCharsets.UTF_8));
    } finally {
      System.setErr(err);
    }
  }

  static Result pretrain(Path yaml, String... more) {
    List<String> a = new ArrayList<>(List.of("--mode", "pretrain", "--config", yaml.toString()));
    a.addAll(List.of(more));
    return cli(a.toArray(String[]::new));
  }

  @BeforeAll
  static void prepareOnce() throws Exception {
    Result r = pretrain(config(shared.resolve("warmup"), 1, ""));
    assertEquals(0, r.code(), r.log());
  }

  /** Every file and folder under {@code dir}, relative, with its content's hash. */
  static Map<String, String> tree(Path dir) throws Exception {
    Map<String, String> m = new TreeMap<>();
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.toList()) {
        String h =
            Files.isDirectory(p)
                ? "dir"
                : HexFormat.of()
                    .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
        m.put(dir.relativize(p).toString(), h + " " + Files.getLastModifiedTime(p).toMillis());
      }
    }
    return m;
  }

  static List<JsonNode> lines(Path out, String type) throws IOException {
    List<JsonNode> l = new ArrayList<>();
    for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
      JsonNode n = JSON.readTree(line);
      if (n.get("type").asText().equals(type)) l.add(n);
    }
    return l;
  }

  @Test
  void aRejectedRunLeavesTheOutputFolderByteForByte(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("o");
    Path yaml = config(out, 2, "");
    assertEquals(0, pretrain(yaml).code());
    Map<String, String> before = tree(out);
    assertTrue(before.containsKey("checkpoint-2/trainer_state.json"), before.toString());
    // a bad schedule (found only once the data is open), a missing tokenizer, a missing model
    // folder, a missing input: with and without --overwrite-output-dir
    List<List<String>> bad =
        List.of(
            List.of("--set", "max_steps=-3"),
            List.of("--set", "tokenizer=" + tmp.resolve("nope.model")),
            List.of(
                "--set",
                "model_name_or_path=" + tmp.resolve("no-model"),
                "--set",
                "config_overrides={}"),
            List.of("--set", "train_files=[" + tmp.resolve("missing.txt") + "]"));
    for (List<String> b : bad) {
      for (boolean overwrite : List.of(false, true)) {
        List<String> args = new ArrayList<>(b);
        if (overwrite) args.add("--overwrite-output-dir");
        Result r = pretrain(yaml, args.toArray(String[]::new));
        assertEquals(1, r.code(), args + ": " + r.log());
        assertEquals(before, tree(out), args + " changed the output folder: " + r.log());
      }
    }
  }

  @Test
  void overwriteRemovesTheEarlierRunsOutputsOnly(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("o");
    Path yaml = config(out, 2, "");
    assertEquals(0, pretrain(yaml).code());
    assertTrue(Files.exists(out.resolve("model.safetensors")));
    Files.writeString(out.resolve("notes.txt"), "mine");
    // the new run stops after 1 of 4 steps: it exports nothing, evaluates nothing
    Result r =
        pretrain(
            yaml, "--overwrite-output-dir", "--set", "max_steps=4", "--set", "stop_after_steps=1");
    assertEquals(0, r.code(), r.log());
    assertTrue(r.log().contains("overwrite_output_dir: removed"), r.log());
    for (String gone :
        List.of("model.safetensors", "config.json", "tokenizer.json", "checkpoint-2"))
      assertFalse(Files.exists(out.resolve(gone)), gone + " of the earlier run is still there");
    assertEquals("mine", Files.readString(out.resolve("notes.txt")));
    assertTrue(Files.exists(out.resolve("checkpoint-1/trainer_state.json")));
    assertEquals(1, lines(out, "train").size());
    assertEquals(0, lines(out, "eval").size());
    try (Stream<Path> s = Files.list(out.resolve("runs"))) {
      assertEquals(1, s.count(), "one event file, the new run's");
    }
    assertTrue(Files.size(out.resolve("loss.png")) > 0);
  }

  @Test
  void resumingAFinishedRunWritesItsFinalEvalOnce(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("o");
    Path yaml = config(out, 2, "");
    assertEquals(0, pretrain(yaml).code());
    assertEquals(1, lines(out, "eval").size());
    Result again = pretrain(yaml);
    assertEquals(0, again.code(), again.log());
    assertTrue(
        again.log().contains("had finished (checkpoint at step 2, max_steps 2)"), again.log());
    assertEquals(1, lines(out, "eval").size(), Files.readString(out.resolve("metrics.jsonl")));
    assertEquals(2, lines(out, "train").size());
  }

  @Test
  void aCheckpointWithNanWeightsIsRefusedNamingTheTensor(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("o");
    Path yaml = config(out, 2, "");
    assertEquals(0, pretrain(yaml).code());
    setFirstValueToNan(out.resolve("checkpoint-2/model.safetensors"), "model.norm.weight");
    Result r = pretrain(yaml, "--set", "max_steps=4");
    assertEquals(1, r.code(), r.log());
    assertTrue(r.log().contains("model.norm.weight has 1 non-finite values"), r.log());
    assertTrue(r.log().contains("checkpoint-2"), r.log());
    assertFalse(Files.exists(out.resolve("checkpoint-4")));
  }

  @Test
  void aModelFolderWithNanWeightsIsRefusedNamingTheTensor(@TempDir Path tmp) throws Exception {
    Path base = tmp.resolve("base");
    assertEquals(0, pretrain(config(base, 2, "")).code()); // exports an fp32 HF folder on CPU
    setFirstValueToNan(base.resolve("model.safetensors"), "model.layers.1.mlp.up_proj.weight");
    Path out = tmp.resolve("o");
    Path yaml = config(out, 2, "model_name_or_path: " + base);
    Files.writeString(yaml, Files.readString(yaml).replaceFirst("config_overrides: .*\n", ""));
    Result r = pretrain(yaml);
    assertEquals(1, r.code(), r.log());
    assertTrue(
        r.log().contains("model folder " + base + ": model.layers.1.mlp.up_proj.weight has 1"),
        r.log());
    assertFalse(Files.exists(out), "the rejected run created its output folder");
  }

  /** Overwrites the first element of an F32 tensor in a safetensors file with NaN. */
  static void setFirstValueToNan(Path file, String tensor) throws IOException {
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      byte[] len = new byte[8];
      f.readFully(len);
      long n = ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong();
      byte[] header = new byte[(int) n];
      f.readFully(header);
      JsonNode t = JSON.readTree(header).get(tensor);
      assertEquals("F32", t.get("dtype").asText());
      f.seek(8 + n + t.get("data_offsets").get(0).asLong());
      f.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(Float.NaN).array());
    }
  }

  @Test
  void aRunEndingOnSkippedStepsFailsAndExportsNothing(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("o");
    Path yaml = config(out, 4, "max_nonfinite_steps: 10");
    Files.writeString(
        yaml, Files.readString(yaml).replace("learning_rate: 3.0e-3", "learning_rate: 1.0e+30"));
    Result r = pretrain(yaml);
    assertEquals(1, r.code(), r.log());
    assertTrue(r.log().contains("skipped steps in a row"), r.log());
    assertFalse(Files.exists(out.resolve("model.safetensors")), "a broken model was exported");
  }

  @Test
  void resumingUnderAnotherModelShapeIsRefusedOtherChangesAreListed(@TempDir Path tmp)
      throws Exception {
    Path out = tmp.resolve("o");
    Path yaml = config(out, 2, "");
    assertEquals(0, pretrain(yaml, "--set", "max_steps=4", "--set", "stop_after_steps=2").code());
    Map<String, String> before = tree(out);
    Result shape =
        pretrain(
            yaml,
            "--set",
            "max_steps=4",
            "--set",
            "config_overrides={hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1,"
                + " num_attention_heads: 2, num_key_value_heads: 1}");
    assertEquals(1, shape.code(), shape.log());
    assertTrue(shape.log().contains("its model differs"), shape.log());
    assertTrue(
        shape.log().contains("num_hidden_layers 2 in the checkpoint, 1 in the config"),
        shape.log());
    assertEquals(before, tree(out));
    Result lr = pretrain(yaml, "--set", "max_steps=4", "--set", "learning_rate=1.0e-3");
    assertEquals(0, lr.code(), lr.log());
    assertTrue(lr.log().contains("learning_rate: 0.003 -> 0.001"), lr.log());
  }

  @Test
  void theSftExampleSaysToRunTheDemoFirst(@TempDir Path tmp) throws Exception {
    Path repo = TinyRun.repo();
    Path out = tmp.resolve("sft");
    Result r =
        cli(
            "--mode",
            "sft",
            "--config",
            repo.resolve("configs/sft-example.yaml").toString(),
            "--set",
            "model_name_or_path=" + tmp.resolve("output/pretrain-demo"),
            "--set",
            "output_dir=" + out);
    assertEquals(1, r.code(), r.log());
    assertTrue(r.log().contains("does not exist"), r.log());
    assertTrue(r.log().contains("run the demo to the end first"), r.log());
    assertFalse(Files.exists(out));
    var cfg = PretrainConfig.load(repo.resolve("configs/sft-example.yaml"), new LinkedHashMap<>());
    assertEquals(
        "output/pretrain-demo", cfg.modelNameOrPath(), "the example tunes the demo's model");
  }

  @Test
  void theEmbeddedDemoHasItsOwnFoldersAndKeepsItsInputsMtime(@TempDir Path tmp) throws Exception {
    Map<String, Object> o = new LinkedHashMap<>();
    Path yaml = EmbeddedDemo.extract(tmp.resolve("demo"), o);
    PretrainConfig embedded = PretrainConfig.load(yaml, o);
    PretrainConfig file =
        PretrainConfig.load(
            TinyRun.repo().resolve("configs/pretrain-demo.yaml"), new LinkedHashMap<>());
    assertNotEquals(
        Path.of(embedded.outputDir()).normalize(), Path.of(file.outputDir()).normalize());
    assertNotEquals(Path.of(embedded.dataDir()).normalize(), Path.of(file.dataDir()).normalize());
    assertEquals(EmbeddedDemo.OUTPUT, Path.of(EmbeddedDemo.OUTPUT.toString()));
    // a second extraction leaves unchanged files as they were, so prepare reuses its shards
    Path text = tmp.resolve("demo/inputs/demo/songci.txt");
    FileTime old = FileTime.fromMillis(1_600_000_000_000L);
    Files.setLastModifiedTime(text, old);
    EmbeddedDemo.extract(tmp.resolve("demo"), new LinkedHashMap<>());
    assertEquals(old, Files.getLastModifiedTime(text));
    // a changed file is restored
    Files.writeString(text, "changed");
    EmbeddedDemo.extract(tmp.resolve("demo"), new LinkedHashMap<>());
    assertEquals(Files.size(TinyRun.repo().resolve("configs/demo/songci.txt")), Files.size(text));
  }
}
