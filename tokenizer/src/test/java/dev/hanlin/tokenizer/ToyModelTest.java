package dev.hanlin.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.hanlin.tokenizer.SentencePieceModel.Piece;
import dev.hanlin.tokenizer.SentencePieceModel.Type;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Small hand-made vocabularies that show one rule each; no assets needed. */
class ToyModelTest {

  /** &lt;unk&gt; &lt;s&gt; &lt;/s&gt; ▁ a b c d, then the given (piece, score) pairs. */
  static BpeTokenizer toy(Object... pieceScore) {
    List<Piece> ps = new ArrayList<>();
    ps.add(new Piece("<unk>", 0, Type.UNKNOWN));
    ps.add(new Piece("<s>", 0, Type.CONTROL));
    ps.add(new Piece("</s>", 0, Type.CONTROL));
    for (String c : List.of("\u2581", "a", "b", "c", "d")) ps.add(new Piece(c, -100, Type.NORMAL));
    for (int i = 0; i < pieceScore.length; i += 2) {
      ps.add(
          new Piece(
              (String) pieceScore[i], ((Number) pieceScore[i + 1]).floatValue(), Type.NORMAL));
    }
    return new BpeTokenizer(SentencePieceModel.llamaStyle(ps, 0, 1, 2, false, false));
  }

  @Test
  void unreachablePieceIsFound() {
    // "bc" merges first, after which neither "a"+"bc" nor "bc"+"d" is a piece: "abcd" is never
    // produced although "ab"+"cd" spells it (Chinese-LLaMA-2 has 652 pieces like this).
    BpeTokenizer t = toy("bc", 0, "ab", -1, "cd", -2, "abcd", -3);
    int abcd = t.pieceId("abcd");
    assertEquals(List.of(abcd), VocabExtension.unreachablePieces(t, 0));
    assertArrayEquals(
        new int[] {t.pieceId("a"), t.pieceId("bc"), t.pieceId("d")}, t.encodeNormalized("abcd"));
  }

  @Test
  void tiesGoToTheLeftmostPair() {
    BpeTokenizer t = toy("aa", -1);
    assertArrayEquals(new int[] {t.pieceId("aa"), t.pieceId("a")}, t.encodeNormalized("aaa"));
  }

  @Test
  void unknownCharactersBecomeOneUnkPerRunWithoutByteFallback() {
    BpeTokenizer t = toy();
    assertArrayEquals(new int[] {4, 0, 5, 0}, t.encodeNormalized("axyb\u00e9"));
    assertEquals("a \u2047 b \u2047 ", t.decode(new int[] {4, 0, 5, 0}));
  }

  @Test
  void modelRoundTripsThroughBytesAndJson(@TempDir Path dir) {
    BpeTokenizer t = toy("ab", -1, "abc", -2);
    SentencePieceModel again = SentencePieceModel.parse(t.model().toBytes(), "toy");
    assertEquals(t.model().pieces(), again.pieces());
    assertEquals(t.fingerprint(), new BpeTokenizer(again).fingerprint());
    HfTokenizerJson.writeFolder(t.model(), dir);
    Tokenizer json = Tokenizer.load(dir.resolve("tokenizer.json"));
    assertEquals(t.fingerprint(), json.fingerprint());
    assertArrayEquals(t.encode("abc abd", true, true), json.encode("abc abd", true, true));
    assertNotEquals(t.fingerprint(), toy("ab", -1).fingerprint());
  }
}
