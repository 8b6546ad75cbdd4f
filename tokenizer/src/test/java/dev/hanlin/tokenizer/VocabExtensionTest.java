package dev.hanlin.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.hanlin.tokenizer.SentencePieceModel.Type;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Extends Llama 2 with pieces learned from the first 20,000 training lines, as the committed
 * goldens were made (see make_extension_goldens.py), and checks the output: byte-identical model,
 * python sentencepiece's ids, tokenizer.json, base ids unchanged, every piece reachable, emoji.
 */
class VocabExtensionTest {
  @TempDir static Path dir;
  static BpeTokenizer base;
  static BpeTokenizer extended;
  static VocabExtension.Result result;

  @BeforeAll
  static void extend() {
    base = (BpeTokenizer) Tokenizer.load(Assets.llamaModel());
    result =
        VocabExtension.extend(
            base,
            List.of(Assets.require("corpus/zh_train_20k.txt")),
            new VocabExtension.Options(36000, 2, 16, 2, true),
            VocabExtension.Progress.NONE);
    HfTokenizerJson.writeFolder(result.model(), dir);
    extended = (BpeTokenizer) Tokenizer.load(dir);
  }

  @Test
  void sameModelAsTheGoldensWereMadeFrom() throws Exception {
    String header = Files.readAllLines(goldens()).getFirst();
    String md5 =
        HexFormat.of()
            .formatHex(
                MessageDigest.getInstance("MD5")
                    .digest(Files.readAllBytes(dir.resolve("tokenizer.model"))));
    if (!header.contains(md5)) {
      fail(
          "the extension changed (tokenizer.model md5 "
              + md5
              + "); if that is intended, regenerate the goldens as make_extension_goldens.py says."
              + " Header: "
              + header);
    }
  }

  @Test
  void encodesAsPythonSentencePieceDoes() {
    ParityCheck c = new ParityCheck();
    c.check(extended, Assets.readGoldens(goldens()));
    assertTrue(c.documents >= 200);
    assertTrue(c.exact(), c.summary("extended tokenizer.model"));
  }

  @Test
  void tokenizerJsonEncodesTheSame() {
    Tokenizer json = Tokenizer.load(dir.resolve("tokenizer.json"));
    assertEquals(extended.fingerprint(), json.fingerprint());
    ParityCheck c = new ParityCheck();
    c.check(json, Assets.readGoldens(goldens()));
    assertTrue(c.exact(), c.summary("extended tokenizer.json"));
  }

  @Test
  void baseIdsNeverChange() {
    assertEquals(36000, extended.vocabSize());
    for (int id = 0; id < base.vocabSize(); id++) {
      assertEquals(base.piece(id), extended.piece(id));
      assertEquals(base.type(id), extended.type(id));
    }
    assertEquals(result.model().pieces().subList(0, 32000), base.model().pieces());
    assertEquals(0, result.removedUnreachable());
  }

  @Test
  void everyNewPieceIsReachable() {
    assertEquals(List.of(), VocabExtension.unreachablePieces(extended, base.vocabSize()));
    for (int id = base.vocabSize(); id < extended.vocabSize(); id++) {
      assertEquals(Type.NORMAL, extended.type(id));
    }
  }

  @Test
  void emojiAreCovered() throws IOException {
    // Every fully-qualified sequence of Unicode's emoji-test.txt encodes without byte fallback.
    List<String> lines = Files.readAllLines(Path.of("/usr/share/unicode/emoji/emoji-test.txt"));
    int sequences = 0;
    List<String> uncovered = new ArrayList<>();
    for (String l : lines) {
      int hash = l.indexOf("; fully-qualified");
      if (hash < 0) continue;
      String e = l.substring(l.indexOf("# ") + 2).split(" ")[0];
      sequences++;
      for (int id : extended.encode(e, false, false)) {
        if (extended.type(id) == Type.BYTE) {
          uncovered.add(e);
          break;
        }
      }
    }
    assertTrue(sequences > 3000, "emoji-test.txt (Debian unicode-data) has " + sequences);
    assertEquals(List.of(), uncovered);
  }

  @Test
  void newPiecesMapToTheirBaseIds() {
    int[][] rows = Tokenizer.baseIdsOfNewPieces(base, extended);
    assertEquals(extended.vocabSize() - base.vocabSize(), rows.length);
    for (int i = 0; i < rows.length; i++) {
      String p = extended.piece(base.vocabSize() + i);
      assertTrue(rows[i].length > 0, p);
      assertEquals(p.replace('\u2581', ' '), base.decode(rows[i]).replace('\u2581', ' '));
      for (int id : rows[i]) assertTrue(id < base.vocabSize());
    }
    // A new character is new because Llama 2 spells it in UTF-8 bytes: those are its base ids.
    String ch = extended.piece(base.vocabSize());
    assertEquals(1, ch.codePointCount(0, ch.length()), ch);
    byte[] utf8 = ch.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    int[] bytes = new int[utf8.length];
    for (int k = 0; k < utf8.length; k++) bytes[k] = 3 + (utf8[k] & 0xff);
    assertArrayEquals(bytes, rows[0], ch);
  }

  @Test
  void fewerTokensPerChineseCharacter() throws Exception {
    List<String> lines =
        Files.readString(Assets.require("corpus/zh_heldout_modern.txt")).lines().toList();
    double before = Efficiency.measure(base, lines).get("tokensPerHan");
    double after = Efficiency.measure(extended, lines).get("tokensPerHan");
    assertTrue(after < 0.8 * before, "before " + before + ", after " + after);
  }

  private static Path goldens() {
    return Assets.root().resolve("tokenizer/extension.golden.jsonl");
  }
}
