package dev.hanlin.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Llama 2 written as an HF folder and read back from tokenizer.json alone. */
class LlamaJsonTest {
  @Test
  void jsonAloneEncodesLikeSentencePiece(@TempDir Path dir) {
    BpeTokenizer llama = (BpeTokenizer) Assets.llama();
    HfTokenizerJson.writeFolder(llama.model(), dir);
    Tokenizer json = Tokenizer.load(dir.resolve("tokenizer.json"));
    assertEquals(llama.fingerprint(), json.fingerprint());
    assertEquals(llama.fingerprint(), Tokenizer.load(dir).fingerprint());
    List<Assets.Golden> g =
        Assets.readGoldens(Assets.root().resolve("tokenizer/edge_cases.golden.jsonl"));
    ParityCheck c = new ParityCheck();
    c.check(json, g);
    System.out.println(c.summary("tokenizer.json, edge cases"));
    ParityCheck q = new ParityCheck();
    q.check(json, Assets.readGoldens(Assets.require("tokenizer/quick.golden.jsonl")));
    System.out.println(q.summary("tokenizer.json, quick sample"));
    assertTrue(c.exact() && q.exact(), c.summary("edge") + q.summary("quick"));
  }
}
