package dev.hanlin.tokenizer;

import java.util.Arrays;
import java.util.List;

/** Compares a tokenizer with SentencePiece goldens and keeps the counts and first differences. */
final class ParityCheck {
  long documents, characters, tokens, encodeMismatches, decodeMismatches;
  final StringBuilder firstDiffs = new StringBuilder();

  void check(Tokenizer t, List<Assets.Golden> goldens) {
    for (Assets.Golden g : goldens) {
      documents++;
      characters += g.text().length();
      tokens += g.ids().length;
      int[] ids = t.encode(g.text(), false, false);
      if (!Arrays.equals(ids, g.ids())) {
        if (encodeMismatches++ < 5) {
          firstDiffs.append(
              "encode "
                  + quote(g.text())
                  + "\n  expected "
                  + Arrays.toString(g.ids())
                  + "\n  got      "
                  + Arrays.toString(ids)
                  + "\n");
        }
      }
      String dec = t.decode(g.ids());
      if (!dec.equals(g.decoded())) {
        if (decodeMismatches++ < 5) {
          firstDiffs.append(
              "decode "
                  + Arrays.toString(g.ids())
                  + "\n  expected "
                  + quote(g.decoded())
                  + "\n  got      "
                  + quote(dec)
                  + "\n");
        }
      }
    }
  }

  boolean exact() {
    return encodeMismatches == 0 && decodeMismatches == 0;
  }

  String summary(String what) {
    return String.format(
        "%s: %d documents, %d characters, %d tokens; encode mismatches %d, decode mismatches %d%n%s",
        what, documents, characters, tokens, encodeMismatches, decodeMismatches, firstDiffs);
  }

  private static String quote(String s) {
    String q = s.length() > 200 ? s.substring(0, 200) + "..." : s;
    return "\"" + q.replace("\n", "\\n").replace("\t", "\\t") + "\"";
  }
}
