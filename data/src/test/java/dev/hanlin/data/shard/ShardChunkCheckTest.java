package dev.hanlin.data.shard;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.DataException;
import dev.hanlin.data.Fixtures;
import dev.hanlin.data.loader.Batch;
import dev.hanlin.data.loader.DataLoader;
import dev.hanlin.data.loader.LoaderOptions;
import dev.hanlin.data.prepare.Prepare;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 13 item 1: corrupted token shards are caught the first time a chunk is read, naming the
 * shard and the chunk or token, and shards of the previous format version still read.
 */
class ShardChunkCheckTest {
  @TempDir Path dir;

  /** A 32000-token vocabulary (Llama 2's size), so that 31999 is a valid but wrong id. */
  static final Fixtures.ByteTokenizer LLAMA_SIZED = new Fixtures.ByteTokenizer(32000 - 256);

  /** Sets every {@code every}-th token from {@code from} (in tokens) to {@code id}, in place. */
  static void overwriteTokens(Path shard, long from, long to, int every, int id) throws Exception {
    try (RandomAccessFile f = new RandomAccessFile(shard.toFile(), "rw")) {
      for (long i = from; i < to; i += every) {
        f.seek(ShardFormat.HEADER_BYTES + 2 * i);
        f.write(id & 0xFF);
        f.write(id >>> 8);
      }
    }
  }

  private Path shard(int tokens, int chunkBytes) throws Exception {
    Path p = dir.resolve("s.tok");
    try (ShardWriter w = new ShardWriter(p, 2, 32000, "fp", chunkBytes)) {
      int[] doc = new int[100];
      for (int k = 0; k < tokens / 100; k++) {
        for (int i = 0; i < 100; i++) doc[i] = (k * 100 + i) % 31000;
        w.add(doc);
      }
      w.finish();
    }
    return p;
  }

  @Test
  void onlyTheChunkThatIsReadIsCheckedAndABadOneIsNamed() throws Exception {
    Path p = shard(10_000, 1024); // 20000 bytes: 19 chunks of 512 tokens and a short one
    overwriteTokens(p, 5 * 512 + 7, 5 * 512 + 8, 1, 31999); // one token in chunk 5
    try (ShardReader r = ShardReader.open(p, "fp")) { // opening stays cheap: no data pass
      assertEquals(2, r.formatVersion());
      assertArrayEquals(new long[] {0, 1, 2}, r.tokens(0, 3).toLongArray());
      assertEquals(2559 % 31000, r.token(2559)); // chunk 4, up to the bad chunk's edge
      r.tokens(6 * 512, 3000); // chunks 6..11
      var e = assertThrows(DataException.class, () -> r.tokens(5 * 512 - 10, 20));
      assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
      assertTrue(
          e.getMessage().contains("data checksum mismatch in chunk 5 (tokens 2560 to 3071"),
          e.getMessage());
      assertTrue(e.getMessage().contains("at byte " + (256 + 2 * 2560)), e.getMessage());
      // A second read of the bad chunk fails again: it is never marked as checked.
      assertThrows(DataException.class, () -> r.token(2567));
      var v = assertThrows(DataException.class, () -> r.verify(-1, -1));
      assertTrue(v.getMessage().contains("chunk 5"), v.getMessage());
    }
  }

  @Test
  void idsOutsideTheVocabularyAreNamedWithShardAndOffset() throws Exception {
    Path p = shard(3000, ShardFormat.CHUNK_BYTES);
    overwriteTokens(p, 0, 3000, 50, 65535);
    try (ShardReader r = ShardReader.open(p, "fp")) {
      var e = assertThrows(DataException.class, () -> r.tokens(100, 10));
      String m = e.getMessage();
      assertTrue(m.contains(p.toString()), m);
      assertTrue(m.contains("token 0 (byte 256) is 65535, not below the vocabulary size 32000"), m);
    }
  }

  /** The reproduction through the training loader: no batch is handed out. */
  @Test
  void everyFiftiethTokenFlippedStopsTheLoaderBeforeAnyBatch() throws Exception {
    for (int id : new int[] {31999, 65535}) {
      Path out = prepare(dir.resolve("d" + id));
      Manifest.ShardEntry entry = Manifest.read(out).shards("train").getFirst();
      Path shard = out.resolve(entry.file());
      overwriteTokens(shard, 0, entry.tokens(), 50, id);
      try (TokenDataset ds = TokenDataset.open(out, "train", LLAMA_SIZED.fingerprint());
          DataLoader dl = new DataLoader(ds, LoaderOptions.of(64, 4, 0), Cursor.START)) {
        var e = assertThrows(DataException.class, dl::next);
        String m = e.getMessage();
        assertTrue(m.startsWith("corrupt token shard " + shard), m);
        assertTrue(m.contains("data checksum mismatch in chunk 0"), m);
        if (id == 65535) assertTrue(m.contains("is 65535, not below the vocabulary size 32000"), m);
        assertEquals(Cursor.START, dl.cursor(), "no batch was taken");
      }
      VerifyData.Report report = VerifyData.run(out, LLAMA_SIZED.fingerprint());
      assertFalse(report.ok());
      assertTrue(report.summary().contains("data checksum mismatch in chunk 0"), report.summary());
    }
  }

  private Path prepare(Path out) throws Exception {
    Fixtures.write(dir.resolve("a.jsonl"), Fixtures.jsonl(Fixtures.mixed(), "text"));
    Prepare.run(
        Fixtures.config(out, List.of("a.jsonl"), Map.of("validation_split_percentage", 10.0)),
        LLAMA_SIZED,
        dir,
        new PrintStream(new ByteArrayOutputStream()));
    return out;
  }

  /**
   * Version 1 shards, as the previous build wrote them (test-data/data/prepared-v1), still train.
   */
  @Test
  void versionOneShardsStillReadAndAreCheckedWholeAtOpen() throws Exception {
    Path v1 = Fixtures.testData().resolve("data/prepared-v1");
    Path copy = dir.resolve("v1");
    copyTree(v1, copy);
    var tok = new Fixtures.ByteTokenizer();
    List<String> docs = Fixtures.documents(copy, "train", tok);
    assertEquals(Fixtures.mixed().subList(0, 30).stream().filter(docs::contains).count(), 28);
    try (TokenDataset ds = TokenDataset.open(copy, "train", tok.fingerprint())) {
      assertEquals(1, ds.shards().getFirst().formatVersion());
      List<Long> stream = new ArrayList<>();
      for (String d : docs) for (int id : tok.encode(d, true, true)) stream.add((long) id);
      assertEquals(stream.size(), ds.tokenCount());
      try (DataLoader dl =
          new DataLoader(ds, LoaderOptions.of(32, 2, 0).withShuffle(false), Cursor.START)) {
        try (Batch b = dl.next()) {
          long[] got = b.tokens().toLongArray();
          for (int i = 0; i < 33; i++) assertEquals(stream.get(i), got[i]);
        }
      }
    }
    assertTrue(VerifyData.run(copy, tok.fingerprint()).ok());
    Path shard = copy.resolve(Manifest.read(copy).shards("train").getFirst().file());
    overwriteTokens(shard, 500, 501, 1, 200);
    var e = assertThrows(DataException.class, () -> TokenDataset.open(copy, "train", null));
    assertTrue(e.getMessage().contains(shard.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("a version 1 shard, checked whole at open"), e.getMessage());
  }

  static void copyTree(Path from, Path to) throws Exception {
    try (Stream<Path> s = Files.walk(from)) {
      for (Path p : s.toList()) {
        Path t = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) Files.createDirectories(t);
        else Files.copy(p, t);
      }
    }
  }
}
