package dev.hanlin.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 13 item 7: Meta's Llama 2 tokenizer.model with one bit flipped, and broken tokenizer.json
 * files, fail with {@link TokenizerFormatException} naming the file and byte offset (or JSON key),
 * never a NullPointerException, an index error or an allocation sized by a lying length.
 */
class TokenizerFormatTest {
  @TempDir Path dir;

  /** The real file with bit {@code bit} of byte {@code offset} flipped, written to the temp dir. */
  Path flipped(int offset, int bit) throws Exception {
    byte[] b = Files.readAllBytes(Assets.llamaModel());
    b[offset] ^= (byte) (1 << bit);
    Path p = dir.resolve("flip-" + offset + "-" + bit + ".model");
    Files.write(p, b);
    return p;
  }

  /** Tokenizer.load's error for a flipped file: its message, with the parser's type as cause. */
  String loadError(Path p) {
    var e = assertThrows(UncheckedIOException.class, () -> Tokenizer.load(p));
    assertInstanceOf(TokenizerFormatException.class, e.getCause(), e.toString());
    assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
    return e.getMessage();
  }

  @Test
  void chosenBitFlipsNameTheFileAndOffset() throws Exception {
    // The first piece's tag 0x0a (field 1, length-delimited) becomes 0x08 (varint): the
    // reproduction, which read f.bytes() of a varint and died with a NullPointerException.
    assertFlipError(0, 1, ": pieces at byte 0: wire type 0, expected 2");
    // Piece 0's type (byte 15: 2, UNKNOWN) becomes 66.
    assertFlipError(15, 6, ": piece 0 at byte 14: unknown piece type 66");
    // Piece 0's text tag (byte 2) becomes a varint: "<unk>" is then read as tags, '<' first.
    assertFlipError(2, 1, ": piece 0 at byte 4: unsupported wire type 4 (field 7)");
    // Piece 0's score tag (byte 9, fixed32) becomes fixed64, longer than what is left.
    assertFlipError(
        9, 2, ": piece 0 at byte 10: a value of 8 bytes runs past the end of its message");
    // Piece 0's type tag (byte 14: field 3, varint) becomes field 2, the score, as a varint.
    assertFlipError(14, 3, ": piece 0 score at byte 14: wire type 0, expected 5");
    // Piece 0's length (byte 1: 14) gains a continuation bit: it claims 1294 bytes, which are
    // there but are several pieces; their fields are then read as piece 0's.
    Path p = flipped(1, 7);
    assertTrue(loadError(p).contains(" at byte "), loadError(p));
    // trainer_spec's tag (byte 499437) becomes a varint: its payload is read as top-level fields.
    p = flipped(499437, 1);
    assertTrue(loadError(p).contains(" at byte "), loadError(p));
    // pad_id -1 (ten bytes from 499641) becomes -2: not a piece.
    assertFlipError(
        499641,
        0,
        ": trainer_spec field 43 at byte 499639: special id -2 is not a piece (32000 pieces)");
    // Piece 3 "<0x00>" becomes "<0x01>", which piece 4 already is: the encoder refuses it.
    assertFlipError(53, 0, ": piece <0x01> appears twice (id 4)");
  }

  /**
   * One bit of every byte of the head of the file and of the trainer and normalizer specs (a
   * different bit for each byte): each either parses or is a TokenizerFormatException.
   */
  @Test
  void everyFlipInTheStructuredPartsIsParsedOrATokenizerFormatException() throws Exception {
    byte[] original = Files.readAllBytes(Assets.llamaModel());
    int parsed = 0, rejected = 0;
    for (int[] range : new int[][] {{0, 96}, {499430, original.length}}) {
      for (int i = range[0]; i < range[1]; i++) {
        byte[] b = original.clone();
        b[i] ^= (byte) (1 << (i % 8));
        try {
          SentencePieceModel.parse(b, "tokenizer.model");
          parsed++;
        } catch (TokenizerFormatException e) {
          assertTrue(e.getMessage().startsWith("tokenizer.model"), e.getMessage());
          assertTrue(e.getMessage().contains(" at byte "), e.getMessage());
          rejected++;
        } catch (RuntimeException | Error e) {
          fail("byte " + i + " bit " + (i % 8) + ": " + e, e);
        }
      }
    }
    assertTrue(rejected > 20 && parsed > 20, parsed + " parsed, " + rejected + " rejected");
  }

  private Path json(String name, String text) throws Exception {
    return Files.writeString(dir.resolve(name), text, StandardCharsets.UTF_8);
  }

  @Test
  void brokenTokenizerJsonNamesTheFileAndOffsetOrKey() throws Exception {
    BpeTokenizer llama = (BpeTokenizer) Assets.llama();
    Path folder = dir.resolve("hf");
    HfTokenizerJson.writeFolder(llama.model(), folder);
    String good = Files.readString(folder.resolve("tokenizer.json"));

    Path cut = json("cut.json", good.substring(0, 5000));
    var e = assertThrows(TokenizerFormatException.class, () -> HfTokenizerJson.read(cut));
    assertTrue( // the end of the file, where the input ran out
        e.getMessage().startsWith(cut + " at byte " + Files.size(cut) + " (line "), e.getMessage());

    // A lying id would size an array of two billion strings.
    var tree = (com.fasterxml.jackson.databind.node.ObjectNode) new ObjectMapper().readTree(good);
    ((com.fasterxml.jackson.databind.node.ObjectNode) tree.get("model").get("vocab"))
        .put("<unk>", 2_000_000_000);
    Path big = json("big.json", tree.toString());
    e = assertThrows(TokenizerFormatException.class, () -> HfTokenizerJson.read(big));
    assertTrue(
        e.getMessage().startsWith(big + ": model.vocab[\"<unk>\"]: id 2000000000 is not"),
        e.getMessage());

    tree = (com.fasterxml.jackson.databind.node.ObjectNode) new ObjectMapper().readTree(good);
    ((com.fasterxml.jackson.databind.node.ArrayNode) tree.get("model").get("merges"))
        .set(3, new ObjectMapper().createArrayNode().add("▁"));
    Path merge = json("merge.json", tree.toString());
    e = assertThrows(TokenizerFormatException.class, () -> HfTokenizerJson.read(merge));
    assertEquals(merge + ": model.merges[3]: not a pair of strings: [\"▁\"]", e.getMessage());

    tree = (com.fasterxml.jackson.databind.node.ObjectNode) new ObjectMapper().readTree(good);
    var vocab = (com.fasterxml.jackson.databind.node.ObjectNode) tree.get("model").get("vocab");
    vocab.put("", vocab.remove("a").asInt());
    Path empty = json("empty.json", tree.toString());
    e = assertThrows(TokenizerFormatException.class, () -> HfTokenizerJson.read(empty));
    assertTrue(e.getMessage().startsWith(empty + ": model.vocab: token "), e.getMessage());

    Path root = json("root.json", "[]");
    e = assertThrows(TokenizerFormatException.class, () -> HfTokenizerJson.read(root));
    assertEquals(root + ": (root): not a JSON object", e.getMessage());
  }

  /**
   * Flipping bit {@code bit} of byte {@code at} makes loading fail with the file and {@code want}.
   */
  private void assertFlipError(int at, int bit, String want) throws Exception {
    Path p = flipped(at, bit);
    assertEquals(p + want, loadError(p));
  }
}
