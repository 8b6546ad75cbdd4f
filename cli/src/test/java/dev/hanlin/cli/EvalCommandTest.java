package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --mode eval} on prepared data (EvalRun's prepared path), in this JVM. */
class EvalCommandTest {
  @TempDir static Path tmp;
  static Path model, data;

  record Result(int code, String out, String err) {}

  static synchronized Result cli(String... args) {
    PrintStream out = System.out, err = System.err;
    var o = new ByteArrayOutputStream();
    var e = new ByteArrayOutputStream();
    System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
    try {
      int code = Cli.run(args);
      return new Result(
          code, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(out);
      System.setErr(err);
    }
  }

  /** A two-step run exports a model to evaluate; its data is prepared on the way. */
  @BeforeAll
  static void train() throws Exception {
    model = tmp.resolve("run");
    data = tmp.resolve("data");
    Path yaml =
        TinyRun.config(
            model,
            TinyRun.SMALL,
            data,
            """
            max_steps: 2
            per_device_train_batch_size: 2
            eval_steps: 0
            device: cpu
            """);
    Result r = cli("--mode", "pretrain", "--config", yaml.toString());
    assertEquals(0, r.code(), r.err());
  }

  /** {@code --mode eval} of the trained model on its prepared data, with {@code more} flags. */
  static Result eval(String... more) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "--mode",
                "eval",
                "--model",
                model.toString(),
                "--data",
                data.toString(),
                "--device",
                "cpu",
                "--block-size",
                "32"));
    args.addAll(List.of(more));
    return cli(args.toArray(String[]::new));
  }

  static JsonNode json(String... more) throws Exception {
    List<String> args = new ArrayList<>(List.of(more));
    args.add("--json");
    Result r = eval(args.toArray(String[]::new));
    assertEquals(0, r.code(), r.err());
    return new ObjectMapper().readTree(r.out());
  }

  @Test
  void scoresTheValidationSplit() throws Exception {
    JsonNode all = json();
    double loss = all.get("loss").asDouble();
    assertTrue(Double.isFinite(loss) && loss > 0, all.toString());
    assertEquals(Math.exp(loss), all.get("perplexity").asDouble(), 1e-9 * Math.exp(loss));
    JsonNode one = json("--batch-size", "1", "--max-batches", "1");
    assertEquals(32, one.get("tokens").asLong(), one.toString()); // one block: 32 targets
    assertTrue(all.get("tokens").asLong() > 32, all.toString());
  }

  /** Data tokenized with another tokenizer is refused, naming both. */
  @Test
  void refusesDataOfAnotherTokenizer() throws Exception {
    Path llama = TinyRun.repo().resolve("test-data/assets/tokenizer/tokenizer.model");
    assertTrue(Files.isRegularFile(llama), "run test-data/tokenizer/setup.sh: " + llama);
    Result r = eval("--tokenizer", llama.toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("was tokenized with tokenizer"), r.err());
  }
}
