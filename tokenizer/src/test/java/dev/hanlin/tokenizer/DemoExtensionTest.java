package dev.hanlin.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bundled demo tokenizer is {@code extend-vocab} on the bundled Song ci over a byte-only base,
 * and it has single pieces for the corpus's punctuation: before, {@code 。} was three byte tokens,
 * so the demo model answered {@code 春风} with {@code 。} and stopped.
 */
class DemoExtensionTest {
  @TempDir static Path dir;
  static Path demo;
  static BpeTokenizer extended;

  @BeforeAll
  static void extend() throws Exception {
    demo = Assets.root().getParent().resolve("configs/demo");
    SentencePieceModel committed = SentencePieceModel.read(demo.resolve("tokenizer.model"));
    // <unk>, <s>, </s>, the 256 bytes and ▁: the base the demo's README names
    BpeTokenizer base =
        new BpeTokenizer(
            SentencePieceModel.llamaStyle(committed.pieces().subList(0, 260), 0, 1, 2, true, true));
    VocabExtension.Result r =
        VocabExtension.extend(
            base,
            List.of(demo.resolve("songci.txt")),
            new VocabExtension.Options(4000, 2, 16, 2, false),
            VocabExtension.Progress.NONE);
    r.model().write(dir.resolve("tokenizer.model"));
    extended = new BpeTokenizer(r.model());
  }

  @Test
  void frequentPunctuationAndSymbolsAreSinglePieces() throws Exception {
    for (String p : List.of("。", "，", "、", "？", "！", "：", "；", "（", "）", "《", "》")) {
      int[] ids = extended.encodeNormalized(p);
      if (Files.readString(demo.resolve("songci.txt")).split(p, -1).length > 3)
        assertEquals(1, ids.length, p + " -> " + ids.length + " tokens");
    }
    // every symbol the corpus uses at least twice
    Map<String, Integer> counts = new TreeMap<>();
    for (String line : Files.readAllLines(demo.resolve("songci.txt")))
      VocabExtension.symbols(line, s -> counts.merge(s, 1, Integer::sum));
    assertTrue(counts.getOrDefault("。", 0) > 10_000 && counts.getOrDefault("，", 0) > 10_000);
    counts.forEach(
        (s, n) -> {
          if (n >= 2) assertEquals(1, extended.encodeNormalized(s).length, s + " (" + n + "×)");
        });
    assertArrayEquals(
        new int[] {1, extended.pieceId("▁"), extended.pieceId("春风"), extended.pieceId("。")},
        extended.encode("春风。", true, false));
  }

  @Test
  void theCommittedDemoTokenizerIsThisExtension() throws Exception {
    assertArrayEquals(
        Files.readAllBytes(dir.resolve("tokenizer.model")),
        Files.readAllBytes(demo.resolve("tokenizer.model")),
        "configs/demo/tokenizer.model differs from extend-vocab on songci.txt; regenerate it as"
            + " configs/demo/README.md says");
  }
}
