package dev.hanlin.tokenizer.fuzz;

import dev.hanlin.tokenizer.Tokenizer;

/** What any tokenizer a reader accepted must do without throwing. */
final class Roundtrip {
  private Roundtrip() {}

  private static final String TEXT =
      "你好，世界。 Hello  world\t123 <s> </s> <0x41> \uD83D\uDE00 \u2581x";

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
