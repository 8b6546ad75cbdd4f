package dev.hanlin.data.prepare;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.Fixtures;
import dev.hanlin.data.loader.Batch;
import dev.hanlin.data.loader.DataLoader;
import dev.hanlin.data.loader.LoaderOptions;
import dev.hanlin.data.shard.TokenDataset;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Prepare and load with Meta's Llama 2 tokenizer (fetched by test-data/tokenizer/setup.sh). */
class LlamaTokenizerPrepareTest {
  @TempDir Path dir;

  @Test
  void chineseAndEnglishDocumentsGetExactlyOneBosAndEos() throws Exception {
    Tokenizer tok = Tokenizer.load(Fixtures.llamaTokenizer());
    List<String> docs = new java.util.ArrayList<>(Fixtures.mixed());
    docs.add("<s> a document that starts with the literal text <s>");
    Fixtures.write(dir.resolve("a.jsonl"), Fixtures.jsonl(docs, "text"));
    var r =
        Prepare.run(
            Fixtures.config(dir.resolve("o"), List.of("a.jsonl"), Map.of()),
            tok,
            dir,
            new PrintStream(new ByteArrayOutputStream()));
    assertEquals("uint16", r.manifest().dtype());
    assertEquals(1, r.manifest().tokenizer().bosId());
    assertEquals(2, r.manifest().tokenizer().eosId());
    PrepareTest.verifyAll(dir.resolve("o")); // BOS first, EOS last, never two BOS
    try (TokenDataset ds = TokenDataset.open(dir.resolve("o"), "train", tok.fingerprint())) {
      var shard = ds.shards().getFirst();
      long bos = 0;
      long eos = 0;
      for (long i = 0; i < ds.tokenCount(); i++) {
        if (ds.token(i) == tok.bosId()) bos++;
        if (ds.token(i) == tok.eosId()) eos++;
      }
      assertEquals(docs.size(), bos, "one BOS per document, none from the text");
      assertEquals(docs.size(), eos);
      long s = shard.documentStart(0);
      long n = shard.documentStart(1) - s;
      int[] first = new int[(int) n];
      for (int i = 0; i < n; i++) first[i] = shard.token(s + i);
      assertEquals(docs.getFirst(), tok.decode(first));
      assertNotEquals(tok.bosId(), first[1]);
      long expected = docs.stream().mapToLong(d -> tok.encode(d, true, true).length).sum();
      assertEquals(expected, ds.tokenCount());
      try (DataLoader dl = new DataLoader(ds, LoaderOptions.of(128, 2, 1), Cursor.START);
          Batch b = dl.next()) {
        assertTrue(b.tokens().toLongArray().length == 2 * 129);
      }
    }
    assertTrue(
        Fixtures.documents(dir.resolve("o"), "train", tok).contains(docs.getLast()),
        "the literal <s> text survives as text");
  }
}
