package dev.hanlin.train.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JsonlListenerTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static StepMetrics step(long s, double loss) {
    return new StepMetrics(s, 10, loss, 3e-4, 1.5, 2048, 0.5, 4096, Double.NaN, Double.isNaN(loss));
  }

  @Test
  void linesAreExactJson() {
    assertEquals(
        "{\"type\":\"train\",\"step\":3,\"max_steps\":10,\"loss\":2.25,\"lr\":0.0003,"
            + "\"grad_norm\":1.5,\"tokens\":2048,\"seconds\":0.5,\"tokens_per_second\":4096,"
            + "\"mfu\":null,\"skipped\":false,\"time\":1700000000.5}",
        JsonlListener.trainLine(step(3, 2.25), 1700000000.5));
    assertEquals(
        "{\"type\":\"eval\",\"step\":5,\"loss\":2,\"perplexity\":7.38905609893065,"
            + "\"accuracy\":0.5,\"tokens\":100,\"time\":12}",
        JsonlListener.evalLine(EvalMetrics.of(5, 2.0, 0.5, 100), 12));
  }

  /**
   * The digits of every kind of double stay those of the hand-built lines (passed before the switch
   * to Jackson too): metrics.jsonl files are compared byte for byte by bench/engine-equivalence.sh.
   */
  @Test
  void numberDigitsAreThoseOfTheHandBuiltLines() {
    StepMetrics m =
        new StepMetrics(
            7,
            1L << 40,
            6.123,
            1e-6,
            Double.POSITIVE_INFINITY,
            1L << 33,
            -0.0,
            1.5e20,
            0.1 + 0.2,
            true);
    assertEquals(
        "{\"type\":\"train\",\"step\":7,\"max_steps\":1099511627776,\"loss\":6.123,"
            + "\"lr\":1.0E-6,\"grad_norm\":null,\"tokens\":8589934592,\"seconds\":0,"
            + "\"tokens_per_second\":1.5E20,\"mfu\":0.30000000000000004,\"skipped\":true,"
            + "\"time\":1764633600.125}",
        JsonlListener.trainLine(m, 1764633600.125));
    assertEquals(
        "{\"type\":\"eval\",\"step\":-1,\"loss\":null,\"perplexity\":null,"
            + "\"accuracy\":0.00001,\"tokens\":0,\"time\":-2.5}",
        JsonlListener.evalLine(new EvalMetrics(-1, Double.NaN, Double.NaN, 1e-5, 0), -2.5));
  }

  @Test
  void writesOneParsableObjectPerStepAndEval(@TempDir Path out) throws IOException {
    JsonlListener l = new JsonlListener(() -> 1.0);
    l.onStart(new RunInfo("t", 10, 0, out, Double.NaN, 1));
    l.onStep(step(1, 3.0));
    l.onStep(step(2, Double.NaN));
    // flushed line by line: readable before the end
    assertEquals(2, Files.readAllLines(out.resolve("metrics.jsonl")).size());
    l.onEval(EvalMetrics.of(2, 2.5, 0.25, 64));
    l.onEnd();
    List<JsonNode> lines = read(out.resolve("metrics.jsonl"));
    assertEquals(3, lines.size());
    assertEquals("train", lines.get(0).get("type").asText());
    assertEquals(3.0, lines.get(0).get("loss").asDouble());
    assertTrue(lines.get(1).get("loss").isNull());
    assertTrue(lines.get(1).get("skipped").asBoolean());
    assertEquals("eval", lines.get(2).get("type").asText());
    assertEquals(0.25, lines.get(2).get("accuracy").asDouble());
  }

  @Test
  void freshRunReplacesAnOldFile(@TempDir Path out) throws IOException {
    Files.writeString(out.resolve("metrics.jsonl"), "{\"type\":\"train\",\"step\":9}\n");
    JsonlListener l = new JsonlListener(() -> 1.0);
    l.onStart(new RunInfo("t", 10, 0, out, Double.NaN, 1));
    l.onStep(step(1, 3.0));
    l.onEnd();
    assertEquals(List.of(1L), steps(out.resolve("metrics.jsonl")));
  }

  @Test
  void truncateAfterDropsLaterAndTornLines(@TempDir Path dir) throws IOException {
    Path f = dir.resolve("metrics.jsonl");
    Files.writeString(
        f,
        "{\"type\":\"train\",\"step\":1}\n"
            + "{\"type\":\"train\",\"step\":2}\n"
            + "{\"type\":\"eval\",\"step\":2,\"loss\":1}\n"
            + "\n"
            + "{\"type\":\"train\",\"step\":3}\n"
            + "{\"type\":\"train\",\"step\":4}\n"
            + "{\"type\":\"train\",\"st");
    assertEquals(3, JsonlListener.truncateAfter(f, 2));
    assertEquals(
        "{\"type\":\"train\",\"step\":1}\n"
            + "{\"type\":\"train\",\"step\":2}\n"
            + "{\"type\":\"eval\",\"step\":2,\"loss\":1}\n",
        Files.readString(f));
    assertEquals(0, JsonlListener.truncateAfter(f, 2));
    assertEquals(0, JsonlListener.truncateAfter(f, 100));
    assertEquals(3, JsonlListener.truncateAfter(f, 0));
    assertEquals("", Files.readString(f));
  }

  @Test
  void truncateAfterNamesTheBadLine(@TempDir Path dir) throws IOException {
    Path f = dir.resolve("metrics.jsonl");
    Files.writeString(f, "{\"type\":\"train\",\"step\":1}\n{\"oops\":1}\n");
    var e = assertThrows(IllegalStateException.class, () -> JsonlListener.truncateAfter(f, 0));
    assertTrue(e.getMessage().contains("metrics.jsonl:2"), e.getMessage());
  }

  @Test
  void resumeAfterKillContinuesTheFileWithoutDuplicates(@TempDir Path out) throws IOException {
    JsonlListener first = new JsonlListener(() -> 1.0);
    first.onStart(new RunInfo("t", 10, 0, out, Double.NaN, 1));
    for (int s = 1; s <= 7; s++) {
      first.onStep(step(s, 10 - s));
      if (s == 5) first.onEval(EvalMetrics.of(5, 4, 0.3, 10));
    }
    // killed after step 7, last checkpoint at 5: no onEnd; a torn line at the end
    Files.writeString(
        out.resolve("metrics.jsonl"), "{\"type\":\"tra", java.nio.file.StandardOpenOption.APPEND);

    JsonlListener second = new JsonlListener(() -> 2.0);
    second.onStart(new RunInfo("t", 10, 5, out, Double.NaN, 1));
    for (int s = 6; s <= 10; s++) second.onStep(step(s, 10 - s));
    second.onEnd();

    assertEquals(
        List.of(1L, 2L, 3L, 4L, 5L, 5L, 6L, 7L, 8L, 9L, 10L), steps(out.resolve("metrics.jsonl")));
    List<JsonNode> lines = read(out.resolve("metrics.jsonl"));
    assertEquals("eval", lines.get(5).get("type").asText());
    assertEquals(2.0, lines.get(6).get("time").asDouble()); // step 6 is the resumed run's
  }

  private static List<JsonNode> read(Path f) throws IOException {
    List<JsonNode> out = new ArrayList<>();
    for (String line : Files.readAllLines(f)) out.add(JSON.readTree(line));
    return out;
  }

  private static List<Long> steps(Path f) throws IOException {
    return read(f).stream().map(n -> n.get("step").asLong()).toList();
  }
}
