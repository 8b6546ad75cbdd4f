package dev.hanlin.tokenizer.fuzz;

import dev.hanlin.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What any tokenizer a reader accepted must do without throwing. */
final class Roundtrip {
  private Roundtrip() {}

  private static final String TEXT =
      "你好，世界。 Hello  world\t123 <s> </s> <0x41> \uD83D\uDE00 \u2581x";

  /**
   * Writes {@code bytes} to a temporary {@code .suffix} file and loads it: a documented rejection
   * ends the run; an accepted tokenizer is exercised. Anything else is a finding and is thrown.
   */
  static void loadAndExercise(byte[] bytes, String suffix) throws Exception {
    Path file = Files.createTempFile("fuzz", suffix);
    Tokenizer tokenizer;
    try {
      Files.write(file, bytes);
      try {
        tokenizer = Tokenizer.load(file);
      } catch (Exception e) {
        if (documented(e)) return;
        throw e;
      }
    } finally {
      Files.deleteIfExists(file);
    }
    exercise(tokenizer);
  }

  /** The readers' own errors: bad input is an IllegalArgumentException or an IOException. */
  static boolean documented(Exception e) {
    return e instanceof IllegalArgumentException
        || e instanceof IOException
        || e instanceof UncheckedIOException;
  }

  static void exercise(Tokenizer t) {
    int[] ids = t.encode(TEXT, true, true);
    for (int id : ids) {
      if (id < 0 || id >= t.vocabSize())
        throw new IllegalStateException("encode gave id " + id + " of " + t.vocabSize());
    }
    t.decode(ids);
    int[] all = new int[Math.min(t.vocabSize(), 512)];
    for (int id = 0; id < all.length; id++) all[id] = id;
    t.decode(all);
    for (int id = 0; id < Math.min(t.vocabSize(), 512); id++) t.piece(id);
    t.fingerprint();
  }
}
