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

  /**
   * User-defined pieces (matched first, never merged), an unused piece (merged, then split back),
   * byte fallback and the dummy prefix, on a model whose pieces are written here. The expected ids
   * are what python3-sentencepiece 0.1.97 printed for the tokenizer.model this model writes.
   */
  @Test
  void userDefinedUnusedAndBytesAsSentencePiece() {
    List<Piece> ps = new ArrayList<>();
    ps.add(new Piece("<unk>", 0, Type.UNKNOWN));
    ps.add(new Piece("<s>", 0, Type.CONTROL));
    ps.add(new Piece("</s>", 0, Type.CONTROL));
    ps.add(new Piece("<sep>", 0, Type.USER_DEFINED));
    ps.add(new Piece("bc", 0, Type.USER_DEFINED));
    for (String c : List.of("\u2581", "a", "b", "c", "d", "e")) {
      ps.add(new Piece(c, -100, Type.NORMAL));
    }
    ps.add(new Piece("ab", -1, Type.NORMAL));
    ps.add(new Piece("de", -2, Type.UNUSED));
    ps.add(new Piece("dea", -3, Type.NORMAL));
    ps.add(new Piece("\u2581a", -4, Type.NORMAL));
    ps.add(new Piece("cd", -5, Type.NORMAL));
    for (int b = 0; b < 256; b++) ps.add(new Piece(String.format("<0x%02X>", b), 0, Type.BYTE));
    BpeTokenizer t = new BpeTokenizer(SentencePieceModel.llamaStyle(ps, 0, 1, 2, true, true));
    Object[][] cases = {
      {"abcd", new int[] {14, 4, 9}},
      {"a<sep>b", new int[] {14, 3, 7}},
      {"<sep><sep>abc", new int[] {5, 3, 3, 6, 4}},
      {"dea", new int[] {5, 13}},
      {"de", new int[] {5, 9, 10}},
      {"ded", new int[] {5, 9, 10, 9}},
      {"abcde abcd", new int[] {14, 4, 9, 10, 14, 4, 9}},
      {" a<sepx>", new int[] {5, 14, 76, 131, 10, 128, 136, 78}},
      {"xyz\u00e9", new int[] {5, 136, 137, 138, 211, 185}},
      {"cde", new int[] {5, 8, 9, 10}},
    };
    for (Object[] c : cases) {
      assertArrayEquals((int[]) c[1], t.encode((String) c[0], false, false), (String) c[0]);
      assertEquals(c[0], t.decode((int[]) c[1]));
    }
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
  void modelRoundTripsThroughBytesAndJson(@TempDir Path dir) throws Exception {
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
