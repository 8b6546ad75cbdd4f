package dev.hanlin.serve;

import dev.hanlin.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.List;

/**
 * Generated ids to text as they come: each call returns the text that is now final. The ids are
 * decoded together (a Chinese character is often several byte tokens, and SentencePiece drops the
 * first piece's leading space), and text ending in an incomplete UTF-8 sequence (U+FFFD) is held
 * back until its last byte arrives. With stop strings, text that could be the start of one is held
 * back too, and the first stop string found ends the text before it.
 */
public final class TextStream {
  private final Tokenizer tok;
  private final List<String> stops;
  private int[] ids = new int[16];
  private int n;
  private int emitted; // chars of the decoded text already returned
  private boolean stopped;

  public TextStream(Tokenizer tok, List<String> stops) {
    this.tok = tok;
    this.stops = stops.stream().filter(s -> !s.isEmpty()).toList();
  }

  /** True once a stop string has been seen: no more text will come. */
  public boolean stopped() {
    return stopped;
  }

  /** Adds a token; returns the newly final text (maybe empty). */
  public String add(int id) {
    if (stopped) return "";
    if (n == ids.length) ids = Arrays.copyOf(ids, n * 2);
    ids[n++] = id;
    String text = tok.decode(Arrays.copyOf(ids, n));
    int end = text.length();
    while (end > emitted && text.charAt(end - 1) == '\uFFFD') end--; // incomplete character
    return take(text, end, false);
  }

  /** The text held back, at the end of generation. */
  public String finish() {
    if (stopped || n == 0) return "";
    String text = tok.decode(Arrays.copyOf(ids, n));
    return take(text, text.length(), true);
  }

  private String take(String text, int end, boolean last) {
    // the earliest stop string wins; text before `emitted` held no stop string's start
    int first = -1;
    for (String s : stops) {
      int at = text.indexOf(s, emitted);
      if (at >= 0 && at + s.length() <= end && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      stopped = true;
      String out = text.substring(emitted, first);
      emitted = first;
      return out;
    }
    if (!last) end -= heldForStop(text, end);
    if (end <= emitted) return "";
    String out = text.substring(emitted, end);
    emitted = end;
    return out;
  }

  /** Chars at the end of {@code text[0, end)} that begin some stop string. */
  private int heldForStop(String text, int end) {
    int hold = 0;
    for (String s : stops)
      for (int k = Math.min(s.length() - 1, end - emitted); k > hold; k--)
        if (text.startsWith(s.substring(0, k), end - k)) {
          hold = k;
          break;
        }
    return hold;
  }
}
