package dev.hanlin.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * Ids and decoded text identical to Debian's python3-sentencepiece with Meta's Llama 2
 * tokenizer.model, on the quick sample of every corpus (goldens from make_goldens.py).
 */
class SentencePieceParityTest {
  @Test
  void knownExamples() {
    assertArrayEquals(
        new int[] {15043, 3186, 29991}, Assets.llama().encode("Hello world!", false, false));
    assertArrayEquals(
        new int[] {1, 29871, 243, 162, 169, 156},
        Assets.llama().encode("\uD83E\uDD99", true, false));
    assertEquals(32000, Assets.llama().vocabSize());
    assertEquals(1, Assets.llama().bosId());
    assertEquals(2, Assets.llama().eosId());
    assertEquals(0, Assets.llama().unkId());
    assertEquals("Hello world!", Assets.llama().decode(new int[] {1, 15043, 3186, 29991, 2}));
  }

  @Test
  void handPickedEdgeCasesMatchSentencePiece() {
    ParityCheck c = new ParityCheck();
    c.check(
        Assets.llama(),
        Assets.readGoldens(Assets.root().resolve("tokenizer/edge_cases.golden.jsonl")));
    assertTrue(c.documents > 80);
    assertTrue(c.exact(), c.summary("edge cases"));
  }

  /** Arbitrary id sequences (as a model generates them) decode as sentencepiece decodes them. */
  @Test
  void randomIdSequencesDecodeAsSentencePiece() throws Exception {
    var json = new com.fasterxml.jackson.databind.ObjectMapper();
    int n = 0;
    for (String line :
        java.nio.file.Files.readAllLines(
            Assets.root().resolve("tokenizer/decode_cases.golden.jsonl"))) {
      if (line.startsWith("#")) continue;
      var node = json.readTree(line);
      int[] ids = new int[node.get("ids").size()];
      for (int i = 0; i < ids.length; i++) ids[i] = node.get("ids").get(i).asInt();
      assertEquals(node.get("dec").asText(), Assets.llama().decode(ids), line);
      n++;
    }
    assertEquals(1500, n);
  }

  @Test
  void quickSampleMatchesSentencePiece() {
    ParityCheck c = new ParityCheck();
    long t0 = System.nanoTime();
    c.check(Assets.llama(), Assets.readGoldens(Assets.require("tokenizer/quick.golden.jsonl")));
    System.out.printf("%.1f s%n", (System.nanoTime() - t0) / 1e9);
    System.out.println(c.summary("quick sample"));
    assertTrue(c.exact(), c.summary("quick sample"));
  }
}
