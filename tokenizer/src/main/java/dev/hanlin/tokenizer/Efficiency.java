package dev.hanlin.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * How well a tokenizer compresses some text and how fast it runs: what {@code extend-vocab} reports
 * before and after an extension, and what the extension tests hold it to.
 */
public final class Efficiency {
  private Efficiency() {}

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
