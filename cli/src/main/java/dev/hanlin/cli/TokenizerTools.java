package dev.hanlin.cli;

import dev.hanlin.tokenizer.BpeTokenizer;
import dev.hanlin.tokenizer.Efficiency;
import dev.hanlin.tokenizer.HfTokenizerJson;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.tokenizer.VocabExtension;
import dev.hanlin.torch.io.ProgressLine;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.StringJoiner;

/** What the {@code tokenize} and {@code extend-vocab} modes do, behind their option parsing. */
final class TokenizerTools {
  private TokenizerTools() {}

  /** Prints the ids of each text: space-separated, or one JSON array per text. */
  static void printIds(
      Tokenizer t, List<String> texts, boolean json, boolean bos, boolean eos, PrintStream out) {
    for (String text : texts) {
      int[] ids = t.encode(text, bos, eos);
      StringJoiner j = json ? new StringJoiner(",", "[", "]") : new StringJoiner(" ");
      for (int id : ids) j.add(Integer.toString(id));
      out.println(j);
    }
    out.flush();
  }

  /** The lines of a UTF-8 file, one text each. */
  static List<String> readLines(Path file) {
    try {
      // Lenient: malformed UTF-8 becomes U+FFFD, as SentencePiece's normalizer reads it.
      return new String(Files.readAllBytes(file), StandardCharsets.UTF_8).lines().toList();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
  }

  /** The held-out comparison: each {@link Efficiency#measure} value and its line. */
  private static final String[][] HELD_OUT_ROWS = {
    {"tokensPerChar", "  tokens per character          before %.3f  after %.3f%n"},
    {"tokensPerHan", "  tokens per Chinese character  before %.3f  after %.3f  (Han runs only)%n"},
    {"encodeMBs", "  encode MB/s (1 thread)        before %.1f  after %.1f%n"},
    {"decodeMBs", "  decode MB/s (1 thread)        before %.1f  after %.1f%n"}
  };

  /**
   * Extends {@code base} with pieces learned from {@code corpus}, writes the HF tokenizer folder to
   * {@code output}, and reports what changed (on {@code heldout} text when given); the phases'
   * progress is drawn on {@code progress}.
   */
  static VocabExtension.Result extendVocab(
      Path base,
      List<Path> corpus,
      Path heldout,
      Path output,
      VocabExtension.Options options,
      ProgressLine progress,
      PrintStream log) {
    Tokenizer loaded = Tokenizer.load(base);
    if (!(loaded instanceof BpeTokenizer b)) {
      throw new IllegalArgumentException(base + " is not a SentencePiece BPE tokenizer");
    }
    long t0 = System.nanoTime();
    VocabExtension.Result r = VocabExtension.extend(b, corpus, options, new PhaseBar(progress));
    HfTokenizerJson.writeFolder(r.model(), output);
    BpeTokenizer ext = new BpeTokenizer(r.model());
    log.printf(
        "extended %d -> %d pieces (%d characters/emoji, %d merges; %d unreachable removed) from"
            + " %,d Han characters in %.0f s; wrote %s%n",
        b.vocabSize(),
        ext.vocabSize(),
        r.newCharacters(),
        r.newMerges(),
        r.removedUnreachable(),
        r.corpusCharacters(),
        (System.nanoTime() - t0) / 1e9,
        output);
    if (heldout != null) {
      List<String> lines = readLines(heldout);
      Map<String, Double> before = Efficiency.measure(b, lines);
      Map<String, Double> after = Efficiency.measure(ext, lines);
      log.printf(
          "held-out %s (%,.0f characters, %,.0f of them Chinese):%n",
          heldout, before.get("chars"), before.get("hanChars"));
      for (String[] row : HELD_OUT_ROWS) log.printf(row[1], before.get(row[0]), after.get(row[0]));
    }
    return r;
  }

  /** A bar per phase ({@code count [#### ] 40% 1,234/3,085 12s}), ended when it is full. */
  static final class PhaseBar implements VocabExtension.Progress {
    private final ProgressLine line;
    private final long startNanos = System.nanoTime();
    private String phase;
    private int lastPercent = -1;

    PhaseBar(ProgressLine line) {
      this.line = line;
    }

    @Override
    public synchronized void update(String phase, long done, long total) {
      if (!phase.equals(this.phase)) {
        line.end();
        this.phase = phase;
        lastPercent = -1;
      }
      int percent = total <= 0 ? 100 : (int) (100 * done / total);
      if (percent == lastPercent) return;
      lastPercent = percent;
      line.show(
          String.format(
              "%-6s [%s] %3d%% %,d/%,d  %.0fs",
              phase,
              ProgressLine.bar('#', percent / 4, 25),
              percent,
              done,
              total,
              (System.nanoTime() - startNanos) / 1e9));
      if (percent >= 100) {
        line.end();
        this.phase = null;
      }
    }
  }
}
