package dev.hanlin.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.tokenizer.SentencePieceModel.Type;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link Tokenizer#encodeWithOffsets} on SentencePiece's edge cases (odd whitespace, emoji, byte
 * fallback, lone surrogates): the ids are sentencepiece's, and every offset points at the text its
 * token stands for. (Offsets against sentencepiece's own piece offsets: data's
 * SftJointTokenizationTest.)
 */
class OffsetsTest {
  @Test
  void idsAreEncodesAndOffsetsPointAtTheirText() {
    BpeTokenizer t = (BpeTokenizer) Assets.llama();
    List<Assets.Golden> gs =
        Assets.readGoldens(Assets.root().resolve("tokenizer/edge_cases.golden.jsonl"));
    assertTrue(gs.size() > 50);
    for (Assets.Golden g : gs) {
      String text = g.text();
      BpeTokenizer.IntList origin = new BpeTokenizer.IntList();
      assertEquals(t.normalize(text), t.normalizeMapped(text, origin), text);
      Tokenizer.Encoding e = t.encodeWithOffsets(text, true, true);
      int n = g.ids().length;
      assertEquals(n + 2, e.ids().length, text);
      assertArrayEquals(g.ids(), java.util.Arrays.copyOfRange(e.ids(), 1, n + 1), text);
      assertEquals(0, e.starts()[0]);
      assertEquals(text.length(), e.starts()[n + 1]);
      for (int i = 1; i <= n; i++) {
        int s = e.starts()[i], id = e.ids()[i];
        assertTrue(s >= e.starts()[i - 1] && s <= text.length(), text + " token " + i);
        if (t.type(id) != Type.NORMAL) continue;
        String expect = t.piece(id); // compared with the text as the normalizer escapes it
        if (i == 1 && expect.startsWith("\u2581")) expect = expect.substring(1); // dummy prefix
        assertTrue(
            text.replace(' ', '\u2581').startsWith(expect, s),
            text + ": '" + t.piece(id) + "' at " + s);
      }
    }
  }
}
