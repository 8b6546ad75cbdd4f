package dev.hanlin.train.metrics;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.hanlin.torch.io.AtomicFiles;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.DoubleSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Metrics as JSON lines in {@code <output>/metrics.jsonl}: one object per step ({@code
 * "type":"train"}) and per evaluation ({@code "type":"eval"}), flushed line by line so that a
 * killed run loses at most the line being written. Non-finite numbers are written as {@code null}
 * (JSON has no NaN).
 *
 * <p>A resumed run continues the same file: on start it first drops the lines that a killed run
 * wrote after the checkpoint it resumes from ({@link #truncateAfter}), so every step appears once.
 */
public final class JsonlListener implements TrainingListener {
  /** The file's name in the output folder. */
  public static final String FILE_NAME = "metrics.jsonl";

  private static final JsonFactory JSON = new JsonFactory();
  private static final Pattern STEP = Pattern.compile("\"step\":(-?\\d+)");

  private final DoubleSupplier wallClock;
  private Path file;
  private BufferedWriter writer;
  private final java.util.Set<Long> evaluated =
      new java.util.HashSet<>(); // steps with an eval line

  /** Lines stamped with the system clock (Unix seconds). */
  public JsonlListener() {
    this(() -> System.currentTimeMillis() / 1e3);
  }

  /** Lines stamped with {@code wallClock} (Unix seconds). */
  public JsonlListener(DoubleSupplier wallClock) {
    this.wallClock = wallClock;
  }

  /** The file being written, null before {@link #onStart}. */
  public Path file() {
    return file;
  }

  @Override
  public void onStart(RunInfo info) {
    file = info.outputDir().resolve(FILE_NAME);
    try {
      Files.createDirectories(info.outputDir());
      evaluated.clear();
      if (info.resumed()) {
        if (Files.exists(file)) {
          truncateAfter(file, info.startStep());
          evaluated.addAll(evalSteps(file));
        }
        writer =
            Files.newBufferedWriter(
                file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
      } else writer = Files.newBufferedWriter(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot open " + file, e);
    }
  }

  @Override
  public void onStep(StepMetrics m) {
    write(trainLine(m, wallClock.getAsDouble()));
  }

  /**
   * Writes the evaluation's line, unless the file has one for that step already: a finished run
   * that is resumed evaluates its last step again, with the same weights and the same result.
   */
  @Override
  public void onEval(EvalMetrics m) {
    if (evaluated.add(m.step())) write(evalLine(m, wallClock.getAsDouble()));
  }

  private static final Pattern EVAL = Pattern.compile("\"type\":\"eval\"");

  /** The steps of the eval lines in {@code file}. */
  static java.util.Set<Long> evalSteps(Path file) throws IOException {
    java.util.Set<Long> steps = new java.util.HashSet<>();
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      Matcher s = STEP.matcher(line);
      if (EVAL.matcher(line).find() && s.find()) steps.add(Long.parseLong(s.group(1)));
    }
    return steps;
  }

  @Override
  public void onEnd() {
    if (writer == null) return;
    try {
      writer.close();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot close " + file, e);
    } finally {
      writer = null;
    }
  }

  /** The JSON object for a step, without newline. */
  public static String trainLine(StepMetrics m, double unixSeconds) {
    return object(
        g -> {
          g.writeStringField("type", "train");
          g.writeNumberField("step", m.step());
          g.writeNumberField("max_steps", m.maxSteps());
          number(g, "loss", m.loss());
          number(g, "lr", m.lr());
          number(g, "grad_norm", m.gradNorm());
          g.writeNumberField("tokens", m.tokens());
          number(g, "seconds", m.seconds());
          number(g, "tokens_per_second", m.tokensPerSecond());
          number(g, "mfu", m.mfu());
          g.writeBooleanField("skipped", m.skipped());
          number(g, "time", unixSeconds);
        });
  }

  /** The JSON object for an evaluation, without newline. */
  public static String evalLine(EvalMetrics m, double unixSeconds) {
    return object(
        g -> {
          g.writeStringField("type", "eval");
          g.writeNumberField("step", m.step());
          number(g, "loss", m.loss());
          number(g, "perplexity", m.perplexity());
          number(g, "accuracy", m.accuracy());
          g.writeNumberField("tokens", m.tokens());
          number(g, "time", unixSeconds);
        });
  }

  private interface Fields {
    void write(JsonGenerator g) throws IOException;
  }

  /** One compact JSON object, its fields in the order {@code fields} writes them. */
  private static String object(Fields fields) {
    StringWriter out = new StringWriter();
    try (JsonGenerator g = JSON.createGenerator(out)) {
      g.writeStartObject();
      fields.write(g);
      g.writeEndObject();
    } catch (IOException e) {
      throw new UncheckedIOException(e); // a StringWriter does not fail
    }
    return out.toString();
  }

  /**
   * A double field in the digits {@link #num} chooses (Jackson's own would write 3.0 for 3 and
   * 1.7E9 for a Unix time, changing bytes that bench/engine-equivalence.sh compares).
   */
  private static void number(JsonGenerator g, String name, double v) throws IOException {
    g.writeFieldName(name);
    if (Double.isFinite(v)) g.writeNumber(num(v));
    else g.writeNull();
  }

  /**
   * Keeps the lines of {@code file} whose step is at most {@code step} and drops the rest, as well
   * as a last line cut short by a kill (no newline). The file is replaced atomically (temporary
   * file, rename), so a crash here leaves either the old or the new content.
   *
   * @return the number of lines dropped
   * @throws IllegalStateException if a complete line has no {@code "step"} (names file and line)
   */
  public static int truncateAfter(Path file, long step) throws IOException {
    String text = Files.readString(file, StandardCharsets.UTF_8);
    List<String> kept = new ArrayList<>();
    int dropped = 0, lineNo = 0, from = 0;
    while (from < text.length()) {
      int nl = text.indexOf('\n', from);
      lineNo++;
      if (nl < 0) { // torn last line
        dropped++;
        break;
      }
      String line = text.substring(from, nl);
      from = nl + 1;
      if (line.isBlank()) continue;
      Matcher m = STEP.matcher(line);
      if (!m.find())
        throw new IllegalStateException(file + ":" + lineNo + ": no \"step\" in line: " + line);
      if (Long.parseLong(m.group(1)) <= step) kept.add(line);
      else dropped++;
    }
    if (dropped == 0) return 0;
    StringBuilder b = new StringBuilder();
    for (String l : kept) b.append(l).append('\n');
    AtomicFiles.writeString(file, b);
    return dropped;
  }

  private void write(String line) {
    if (writer == null) throw new IllegalStateException("JsonlListener used before onStart");
    try {
      writer.write(line);
      writer.write('\n');
      writer.flush();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }

  /** A JSON number; NaN and infinities (which JSON lacks) as null. */
  static String num(double v) {
    if (!Double.isFinite(v)) return "null";
    if (v == Math.rint(v) && Math.abs(v) < 1e15) return Long.toString((long) v);
    String shortest = Double.toString(v); // the shortest digits that read back as v
    double a = Math.abs(v);
    if (a >= 1e-5 && a < 1e15)
      return new BigDecimal(shortest).stripTrailingZeros().toPlainString(); // 1700000000.5, 0.0003
    return shortest;
  }
}
