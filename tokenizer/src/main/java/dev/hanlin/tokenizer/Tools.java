package dev.hanlin.tokenizer;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.StringJoiner;

/** What the {@code tokenize} and {@code extend-vocab} modes do, behind their option parsing. */
public final class Tools {
  private Tools() {}

  /** Prints the ids of each text: space-separated, or one JSON array per text. */
  public static void printIds(
      Tokenizer t, List<String> texts, boolean json, boolean bos, boolean eos, PrintStream out) {
    for (String text : texts) {
      int[] ids = t.encode(text, bos, eos);
      StringJoiner j = json ? new StringJoiner(",", "[", "]") : new StringJoiner(" ");
      for (int id : ids) j.add(Integer.toString(id));
      out.println(j);
    }
    out.flush();
  }

  /** The files of an HF tokenizer folder, as the trainer and the model tools copy them. */
  public static final List<String> TOKENIZER_FILES =
      List.of(
          "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json");

  /**
   * Puts the tokenizer at {@code src} (a folder, a {@code tokenizer.model} or a {@code
   * tokenizer.json}) into the model folder {@code out} as HF tokenizer files.
   */
  public static void exportTokenizer(Path src, Path out) throws IOException {
    if (Files.isDirectory(src)) {
      for (String f : TOKENIZER_FILES)
        if (Files.exists(src.resolve(f)))
          Files.copy(
              src.resolve(f), out.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    } else if (src.getFileName().toString().endsWith(".model")) {
      HfTokenizerJson.writeFolder(SentencePieceModel.read(src), out);
    } else {
      Files.copy(
          src, out.resolve("tokenizer.json"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
  }

  /** The lines of a UTF-8 file, one text each. */
  public static List<String> readLines(Path file) {
    try {
      // Lenient: malformed UTF-8 becomes U+FFFD, as SentencePiece's normalizer reads it.
      return new String(Files.readAllBytes(file), StandardCharsets.UTF_8).lines().toList();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
  }

  /**
   * Extends {@code base} with pieces learned from {@code corpus}, writes the HF tokenizer folder to
   * {@code output}, and reports what changed (on {@code heldout} text when given).
   */
  public static VocabExtension.Result extendVocab(
      Path base,
      List<Path> corpus,
      Path heldout,
      Path output,
      VocabExtension.Options options,
      PrintStream log) {
    Tokenizer loaded = Tokenizer.load(base);
    if (!(loaded instanceof BpeTokenizer b)) {
      throw new IllegalArgumentException(base + " is not a SentencePiece BPE tokenizer");
    }
    long t0 = System.nanoTime();
    VocabExtension.Result r =
        VocabExtension.extend(b, corpus, options, new ConsoleProgress(System.err));
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
      Map<String, Double> before = measure(b, lines);
      Map<String, Double> after = measure(ext, lines);
      log.printf(
          "held-out %s (%,.0f characters, %,.0f of them Chinese):%n",
          heldout, before.get("chars"), before.get("hanChars"));
      log.printf(
          "  tokens per character          before %.3f  after %.3f%n",
          before.get("tokensPerChar"), after.get("tokensPerChar"));
      log.printf(
          "  tokens per Chinese character  before %.3f  after %.3f  (Han runs only)%n",
          before.get("tokensPerHan"), after.get("tokensPerHan"));
      log.printf(
          "  encode MB/s (1 thread)        before %.1f  after %.1f%n",
          before.get("encodeMBs"), after.get("encodeMBs"));
      log.printf(
          "  decode MB/s (1 thread)        before %.1f  after %.1f%n",
          before.get("decodeMBs"), after.get("decodeMBs"));
    }
    return r;
  }

  /**
   * Tokens per character (whole lines, and Han runs alone) and single-thread encode/decode speed
   * (best of five passes) over some lines.
   */
  public static Map<String, Double> measure(Tokenizer t, List<String> lines) {
    long chars = 0, han = 0, hanTokens = 0, bytes = 0, tokens = 0;
    for (String l : lines) {
      bytes += l.getBytes(StandardCharsets.UTF_8).length;
      chars += l.codePointCount(0, l.length());
      List<String> runs = new ArrayList<>();
      VocabExtension.hanRuns(l, runs::add);
      for (String r : runs) {
        han += r.codePointCount(0, r.length());
        // No dummy prefix: the run is measured as it sits inside a line.
        hanTokens +=
            (t instanceof BpeTokenizer b ? b.encodeNormalized(r) : t.encode(r, false, false))
                .length;
      }
    }
    List<int[]> ids = new ArrayList<>(lines.size());
    for (String l : lines) ids.add(t.encode(l, false, false));
    for (int[] a : ids) tokens += a.length;
    double encodeS = Double.MAX_VALUE, decodeS = Double.MAX_VALUE;
    for (int pass = 0; pass < 5; pass++) {
      long e0 = System.nanoTime();
      for (String l : lines) t.encode(l, false, false);
      encodeS = Math.min(encodeS, (System.nanoTime() - e0) / 1e9);
      long d0 = System.nanoTime();
      for (int[] a : ids) t.decode(a);
      decodeS = Math.min(decodeS, (System.nanoTime() - d0) / 1e9);
    }
    return Map.of(
        "chars", (double) chars,
        "hanChars", (double) han,
        "tokens", (double) tokens,
        "tokensPerChar", (double) tokens / Math.max(1, chars),
        "tokensPerHan", (double) hanTokens / Math.max(1, han),
        "encodeMBs", bytes / 1e6 / encodeS,
        "decodeMBs", bytes / 1e6 / decodeS);
  }
}
