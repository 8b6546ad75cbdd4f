package dev.hanlin.data.prepare;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.DataException;
import dev.hanlin.data.Fixtures;
import dev.hanlin.data.shard.Manifest;
import dev.hanlin.data.shard.ShardReader;
import dev.hanlin.data.shard.TokenDataset;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PrepareTest {
  @TempDir Path dir;
  final Tokenizer tok = new Fixtures.ByteTokenizer();
  final PrintStream quiet = new PrintStream(new ByteArrayOutputStream());

  Prepare.Result prepare(Path out, List<String> inputs, Map<String, Object> extra)
      throws IOException {
    return Prepare.run(Fixtures.config(out, inputs, extra), tok, dir, quiet);
  }

  /** Every shard of the dataset passes the full check, BOS and EOS exactly once per document. */
  static void verifyAll(Path out) throws IOException {
    Manifest m = Manifest.read(out);
    for (String split : List.of("train", "validation")) {
      for (var e : m.shards(split)) {
        try (ShardReader r = ShardReader.open(out.resolve(e.file()), m.tokenizer().fingerprint())) {
          r.verify(m.tokenizer().bosId(), m.tokenizer().eosId());
        }
      }
    }
  }

  @Test
  void everyFormatThroughACsvManifestInOrder() throws Exception {
    List<String> en = Fixtures.english();
    List<String> zh = Fixtures.chinese();
    Path in = dir.resolve("corpus");
    Fixtures.write(in.resolve("a.txt"), String.join("\n", en.subList(0, 10)) + "\n");
    Fixtures.write(in.resolve("b.jsonl.gz"), Fixtures.jsonl(zh.subList(0, 10), "text"));
    Fixtures.write(in.resolve("c.csv"), Fixtures.csv(zh.subList(10, 15)));
    Fixtures.write(in.resolve("d.json"), "[" + String.join(",", quoted(en.subList(10, 13))) + "]");
    Fixtures.write(in.resolve("sub/e.txt.gz"), String.join("\n", zh.subList(20, 23)) + "\n");
    Fixtures.write(in.resolve("sub/f.jsonl"), Fixtures.jsonl(en.subList(20, 22), "text"));
    Fixtures.write(
        in.resolve("list.csv"), "file_name,note\na.txt,x\nb.jsonl.gz,y\nc.csv,\n*.json,\nsub,\n");
    var r =
        prepare(dir.resolve("out"), List.of("corpus/list.csv"), Map.of("keep_linebreaks", false));
    List<String> expected = new ArrayList<>();
    expected.addAll(en.subList(0, 10));
    expected.addAll(zh.subList(0, 10));
    expected.addAll(zh.subList(10, 15));
    expected.addAll(en.subList(10, 13));
    expected.addAll(zh.subList(20, 23));
    expected.addAll(en.subList(20, 22));
    assertEquals(expected, Fixtures.documents(dir.resolve("out"), "train", tok));
    assertEquals(6, r.processed());
    Manifest m = r.manifest();
    assertTrue(m.complete());
    assertEquals(expected.size(), m.counts().trainDocuments());
    long tokens = expected.stream().mapToLong(s -> tok.encode(s, true, true).length).sum();
    assertEquals(tokens, m.splits().train().tokens());
    assertEquals("uint16", m.dtype());
    for (var s : m.sources()) {
      assertEquals(Files.size(Path.of(s.path())), s.size());
      assertTrue(s.mtimeMillis() > 0);
    }
    verifyAll(dir.resolve("out"));
  }

  private static List<String> quoted(List<String> l) {
    return l.stream().map(s -> "{\"text\": \"" + s.replace("\"", "\\\"") + "\"}").toList();
  }

  @Test
  void txtWholeFileIsOneDocumentAndLinebreaksAreKept() throws Exception {
    Fixtures.write(dir.resolve("a.txt"), "line one\nline two\n");
    prepare(dir.resolve("o1"), List.of("a.txt"), Map.of("txt_document", "file"));
    assertEquals(
        List.of("line one\nline two\n"), Fixtures.documents(dir.resolve("o1"), "train", tok));
    prepare(dir.resolve("o2"), List.of("a.txt"), Map.of());
    assertEquals(
        List.of("line one\n", "line two\n"), Fixtures.documents(dir.resolve("o2"), "train", tok));
  }

  @Test
  void validationSplitIsSeededAndByDocument() throws Exception {
    List<String> docs = Fixtures.mixed();
    Fixtures.write(dir.resolve("a.jsonl"), Fixtures.jsonl(docs, "text"));
    Map<String, Object> opts = Map.of("validation_split_percentage", 25.0, "seed", 7);
    prepare(dir.resolve("o1"), List.of("a.jsonl"), opts);
    prepare(dir.resolve("o2"), List.of("a.jsonl"), opts);
    prepare(
        dir.resolve("o3"),
        List.of("a.jsonl"),
        Map.of("validation_split_percentage", 25.0, "seed", 8));
    List<String> val1 = Fixtures.documents(dir.resolve("o1"), "validation", tok);
    List<String> train1 = Fixtures.documents(dir.resolve("o1"), "train", tok);
    assertEquals(val1, Fixtures.documents(dir.resolve("o2"), "validation", tok));
    assertNotEquals(val1, Fixtures.documents(dir.resolve("o3"), "validation", tok));
    assertEquals(docs.size(), val1.size() + train1.size());
    assertTrue(val1.size() >= 12 && val1.size() <= 40, "about 25% of 106: " + val1.size());
    assertNotEquals(docs.subList(0, val1.size()), val1, "not the first N%");
    var all = new HashSet<>(train1);
    all.addAll(val1);
    assertEquals(new HashSet<>(docs), all);
    // the order inside each split is the input order
    List<String> merged = new ArrayList<>(docs);
    merged.retainAll(new HashSet<>(val1));
    assertEquals(merged, val1);
    verifyAll(dir.resolve("o1"));
  }

  @Test
  void validationFilesAndSampleLimits() throws Exception {
    Fixtures.write(dir.resolve("t.txt"), String.join("\n", Fixtures.english()) + "\n");
    Fixtures.write(dir.resolve("t2.txt"), String.join("\n", Fixtures.chinese()) + "\n");
    Fixtures.write(dir.resolve("v.jsonl"), Fixtures.jsonl(Fixtures.chinese(), "text"));
    var r =
        prepare(
            dir.resolve("o"),
            List.of("t.txt", "t2.txt"),
            Map.of(
                "validation_files",
                List.of("v.jsonl"),
                "max_train_samples",
                7,
                "max_eval_samples",
                3,
                "keep_linebreaks",
                false));
    assertEquals(
        Fixtures.english().subList(0, 7), Fixtures.documents(dir.resolve("o"), "train", tok));
    assertEquals(
        Fixtures.chinese().subList(0, 3), Fixtures.documents(dir.resolve("o"), "validation", tok));
    assertEquals(1, r.unread(), "t2.txt is not needed once 7 train documents are taken");
    assertEquals(2, r.manifest().counts().overLimit());
    assertTrue(r.summary().contains("over max_*_samples 2"), r.summary());
  }

  @Test
  void badInputIsCountedWithFileAndLine() throws Exception {
    byte[] invalid = {'o', 'k', (byte) 0xFF, '\n'};
    Files.write(dir.resolve("bad.txt"), invalid);
    Fixtures.write(
        dir.resolve("bad.jsonl"),
        "{\"text\": \"fine\"}\n{\"text\": \"\"}\n\n{\"text\" oops}\n{\"body\": \"x\"}\n"
            + "{\"text\": \"   \"}\n{\"text\": \"also fine\"}\n");
    var r = prepare(dir.resolve("o"), List.of("bad.txt", "bad.jsonl"), Map.of());
    var c = r.manifest().counts();
    assertEquals(1, c.invalidUtf8());
    assertEquals(1, c.malformed());
    assertEquals(1, c.missingField());
    assertEquals(3, c.emptyDocuments());
    assertEquals(8, c.records());
    assertEquals(3, c.trainDocuments());
    String bad = dir.resolve("bad.jsonl").toString();
    assertTrue(r.manifest().problems().stream().anyMatch(p -> p.startsWith(bad + ":4: ")));
    assertTrue(r.manifest().problems().stream().anyMatch(p -> p.startsWith(bad + ":5: ")));
    assertTrue(r.summary().contains("invalid UTF-8 sequences replaced 1"), r.summary());
    String badTxt = dir.resolve("bad.txt").toString();
    assertTrue(
        r.manifest()
            .problems()
            .contains(
                badTxt
                    + ":1 (byte 2): invalid UTF-8, the first of 1 malformed sequences in this file"
                    + " replaced by U+FFFD"),
        r.manifest().problems().toString());
    assertTrue(r.summary().contains("empty documents skipped 3"), r.summary());
    assertTrue(r.summary().contains(bad + ":4: malformed record"), r.summary());
    assertEquals(
        List.of("ok\uFFFD\n", "fine", "also fine"),
        Fixtures.documents(dir.resolve("o"), "train", tok));
  }

  @Test
  void tooManyBadRecordsAbort() throws Exception {
    Fixtures.write(dir.resolve("bad.jsonl"), "{\"text\": 1}\n{nope\n{\"text\": \"x\"}\n[]\n");
    var e =
        assertThrows(
            DataException.class,
            () -> prepare(dir.resolve("o"), List.of("bad.jsonl"), Map.of("max_bad_records", 2)));
    assertTrue(e.getMessage().contains("max_bad_records = 2"), e.getMessage());
    assertTrue(e.getMessage().contains("bad.jsonl:4"), e.getMessage());
  }

  @Test
  void missingOrUnsupportedInputsAreClearErrors() throws Exception {
    var e =
        assertThrows(
            IOException.class, () -> prepare(dir.resolve("o"), List.of("nope.txt"), Map.of()));
    assertTrue(e.getMessage().contains("input not found") && e.getMessage().contains("nope.txt"));
    Fixtures.write(dir.resolve("x.parquet"), "?");
    e =
        assertThrows(
            IOException.class, () -> prepare(dir.resolve("o"), List.of("x.parquet"), Map.of()));
    assertTrue(e.getMessage().contains("unsupported input format"), e.getMessage());
    e = assertThrows(IOException.class, () -> prepare(dir.resolve("o"), List.of("*.md"), Map.of()));
    assertTrue(e.getMessage().contains("matches no file"), e.getMessage());
  }

  @Test
  void rerunSkipsUnchangedInputsAndRedoesChangedOnes() throws Exception {
    Fixtures.write(dir.resolve("a.txt"), String.join("\n", Fixtures.english()) + "\n");
    Fixtures.write(dir.resolve("b.jsonl"), Fixtures.jsonl(Fixtures.chinese(), "text"));
    var first = prepare(dir.resolve("o"), List.of("a.txt", "b.jsonl"), Map.of());
    assertEquals(2, first.processed());
    Map<String, FileTime> before = shardTimes(dir.resolve("o"));
    var second = prepare(dir.resolve("o"), List.of("a.txt", "b.jsonl"), Map.of());
    assertEquals(0, second.processed());
    assertEquals(2, second.reused());
    assertEquals(before, shardTimes(dir.resolve("o")));
    assertEquals(first.manifest().counts(), second.manifest().counts());
    Fixtures.write(
        dir.resolve("b.jsonl"), Fixtures.jsonl(Fixtures.chinese().subList(0, 5), "text"));
    var third = prepare(dir.resolve("o"), List.of("a.txt", "b.jsonl"), Map.of());
    assertEquals(1, third.processed());
    assertEquals(1, third.reused());
    assertEquals(Fixtures.english().size() + 5, third.manifest().counts().trainDocuments());
    // a different tokenizer invalidates everything
    var other =
        Prepare.run(
            Fixtures.config(dir.resolve("o"), List.of("a.txt", "b.jsonl"), Map.of()),
            new Fixtures.ByteTokenizer(10),
            dir,
            quiet);
    assertEquals(2, other.processed());
  }

  private static Map<String, FileTime> shardTimes(Path out) throws IOException {
    Map<String, FileTime> m = new TreeMap<>();
    try (Stream<Path> s = Files.list(out.resolve(Prepare.SHARD_DIR))) {
      for (Path p : s.toList()) m.put(p.getFileName().toString(), Files.getLastModifiedTime(p));
    }
    return m;
  }

  /** Fails while tokenizing any text that contains {@code poison}, like a crash mid-run. */
  static final class FailingTokenizer extends Fixtures.ByteTokenizer {
    final String poison;

    FailingTokenizer(String poison) {
      this.poison = poison;
    }

    @Override
    public int[] encode(String text, boolean addBos, boolean addEos) {
      if (text.contains(poison)) throw new IllegalStateException("simulated crash");
      return super.encode(text, addBos, addEos);
    }
  }

  @Test
  void interruptedRunResumesAndMatchesACleanRun() throws Exception {
    List<String> inputs = new ArrayList<>();
    List<String> docs = Fixtures.mixed();
    for (int i = 0; i < 5; i++) {
      String name = "part" + i + ".jsonl";
      Fixtures.write(dir.resolve(name), Fixtures.jsonl(docs.subList(i * 20, i * 20 + 20), "text"));
      inputs.add(name);
    }
    String poison = docs.get(65); // in part3
    Map<String, Object> opts = Map.of("validation_split_percentage", 10.0, "shard_tokens", 500);
    var e =
        assertThrows(
            DataException.class,
            () ->
                Prepare.run(
                    Fixtures.config(dir.resolve("o"), inputs, opts),
                    new FailingTokenizer(poison),
                    dir,
                    quiet));
    assertTrue(e.getMessage().contains("part3.jsonl"), e.getMessage());
    Manifest partial = Manifest.read(dir.resolve("o"));
    assertFalse(partial.complete());
    assertEquals(3, partial.sources().size());
    assertThrows(DataException.class, () -> TokenDataset.open(dir.resolve("o"), "train", null));
    var resumed = prepare(dir.resolve("o"), inputs, opts);
    assertEquals(3, resumed.reused());
    assertEquals(2, resumed.processed());
    prepare(dir.resolve("clean"), inputs, opts);
    for (String split : List.of("train", "validation")) {
      assertEquals(
          Fixtures.documents(dir.resolve("clean"), split, tok),
          Fixtures.documents(dir.resolve("o"), split, tok));
    }
    try (Stream<Path> s = Files.list(dir.resolve("o").resolve(Prepare.SHARD_DIR))) {
      assertTrue(s.noneMatch(p -> p.toString().endsWith(".tmp")), "no temp files remain");
    }
  }

  @Test
  void anInterruptionInsideALargeInputResumesFromItsLastCheckpoint() throws Exception {
    List<String> docs = new ArrayList<>();
    for (int rep = 0; rep < 3; rep++) {
      for (String d : Fixtures.mixed()) docs.add(d + " #" + docs.size());
    }
    docs.add(5, "");
    docs.add(9, "   ");
    Fixtures.write(dir.resolve("big.jsonl"), Fixtures.jsonl(docs, "text") + "{broken\n");
    String poison = docs.get(250);
    Map<String, Object> opts = Map.of("validation_split_percentage", 10.0, "shard_tokens", 800);
    PrepareConfig cfg = Fixtures.config(dir.resolve("o"), List.of("big.jsonl"), opts);
    assertThrows(
        DataException.class, () -> Prepare.run(cfg, new FailingTokenizer(poison), dir, quiet, 8));
    Manifest partial = Manifest.read(dir.resolve("o"));
    assertFalse(partial.complete());
    assertTrue(partial.sources().isEmpty());
    assertTrue(partial.partial().nextRecord() > 150, "checkpoint near the failure");
    assertTrue(partial.partial().entry().train().size() > 3);
    // A second interruption, before the big input is reached again, keeps the first's checkpoint.
    Fixtures.write(dir.resolve("first.jsonl"), Fixtures.jsonl(List.of("x", "y"), "text"));
    PrepareConfig two =
        Fixtures.config(dir.resolve("o"), List.of("first.jsonl", "big.jsonl"), opts);
    assertThrows(
        DataException.class, () -> Prepare.run(two, new FailingTokenizer("y"), dir, quiet, 8));
    assertEquals(
        partial.partial().nextRecord(),
        Manifest.read(dir.resolve("o")).partial().nextRecord(),
        "the first interruption's checkpoint survives");
    var resumed = Prepare.run(cfg, tok, dir, quiet, 8);
    var clean =
        Prepare.run(
            Fixtures.config(dir.resolve("clean"), List.of("big.jsonl"), opts), tok, dir, quiet, 8);
    assertEquals(1, resumed.processed());
    assertTrue(
        resumed.tokensProcessed() < clean.tokensProcessed() / 2,
        "only the rest was tokenized: " + resumed.tokensProcessed());
    assertEquals(clean.manifest().counts(), resumed.manifest().counts());
    assertEquals(2, clean.manifest().counts().emptyDocuments());
    assertEquals(1, clean.manifest().counts().malformed());
    assertEquals(clean.manifest().problems(), resumed.manifest().problems());
    assertSameShards(dir.resolve("clean"), dir.resolve("o"));
    verifyAll(dir.resolve("o"));
  }

  @Test
  void twoPreparesCannotWriteTheSameFolder() throws Exception {
    Fixtures.write(dir.resolve("a.txt"), "one\ntwo\n");
    Path out = dir.resolve("o");
    Files.createDirectories(out);
    try (var ch =
            java.nio.channels.FileChannel.open(
                out.resolve(".prepare.lock"),
                java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.WRITE);
        var lock = ch.lock()) {
      var e = assertThrows(DataException.class, () -> prepare(out, List.of("a.txt"), Map.of()));
      assertTrue(e.getMessage().contains("another prepare"), e.getMessage());
    }
    assertEquals(2, prepare(out, List.of("a.txt"), Map.of()).manifest().counts().trainDocuments());
  }

  @Test
  void outputIsIdenticalForAnyNumberOfWorkers() throws Exception {
    Fixtures.write(dir.resolve("a.jsonl"), Fixtures.jsonl(Fixtures.mixed(), "text"));
    Map<String, Object> base = Map.of("validation_split_percentage", 20.0, "shard_tokens", 1000);
    var m1 = new java.util.HashMap<String, Object>(base);
    m1.put("workers", 1);
    var m3 = new java.util.HashMap<String, Object>(base);
    m3.put("workers", 3);
    Prepare.run(Fixtures.config(dir.resolve("w1"), List.of("a.jsonl"), m1), tok, dir, quiet, 8);
    var r3 =
        Prepare.run(Fixtures.config(dir.resolve("w3"), List.of("a.jsonl"), m3), tok, dir, quiet, 8);
    assertTrue(r3.manifest().splits().train().shards() > 3, "several shards per input");
    assertSameShards(dir.resolve("w1"), dir.resolve("w3"));
  }

  @Test
  void largeVocabulariesUseUint32() throws Exception {
    Fixtures.write(dir.resolve("a.txt"), String.join("\n", Fixtures.chinese()) + "\n");
    var wide = new Fixtures.ByteTokenizer(70_000);
    var r =
        Prepare.run(
            Fixtures.config(dir.resolve("o"), List.of("a.txt"), Map.of("keep_linebreaks", false)),
            wide,
            dir,
            quiet);
    assertEquals("uint32", r.manifest().dtype());
    assertEquals(Fixtures.chinese(), Fixtures.documents(dir.resolve("o"), "train", wide));
    verifyAll(dir.resolve("o"));
  }

  @Test
  void progressBarReportsFilesRatesAndEta() throws Exception {
    Fixtures.write(dir.resolve("a.txt"), String.join("\n", Fixtures.english()) + "\n");
    var err = new ByteArrayOutputStream();
    Prepare.run(
        Fixtures.config(dir.resolve("o"), List.of("a.txt"), Map.of("progress", true)),
        tok,
        dir,
        new PrintStream(err, true));
    String s = err.toString();
    assertTrue(s.contains("1/1 files") && s.contains("MB/s") && s.contains("tok/s"), s);
    assertTrue(s.contains("done in 00:00:0"), s);
    assertTrue(Progress.clock(3725).equals("01:02:05"));
  }

  /**
   * A shard damaged after prepare wrote it is made again from the raw input, and prepare says so
   * (it did that silently, found by bench/fault-injection.sh).
   */
  @Test
  void aDamagedShardIsMadeAgainAndSaidSo() throws Exception {
    Fixtures.write(dir.resolve("a.txt"), String.join("\n", Fixtures.english()) + "\n");
    Path out = dir.resolve("o");
    prepare(out, List.of("a.txt"), Map.of());
    List<String> before = Fixtures.documents(out, "train", tok);
    Path shard = out.resolve(Manifest.read(out).shards("train").getFirst().file());
    byte[] b = Files.readAllBytes(shard);
    b[20] ^= 1; // the token count in the header
    Files.write(shard, b);
    var err = new ByteArrayOutputStream();
    var r =
        Prepare.run(
            Fixtures.config(out, List.of("a.txt"), Map.of()), tok, dir, new PrintStream(err, true));
    String s = err.toString();
    assertTrue(s.contains("prepare: " + shard + " is damaged ("), s);
    assertTrue(
        s.contains("tokenizing " + dir.resolve("a.txt")) || s.contains("tokenizing a.txt"), s);
    assertEquals(1, r.processed());
    assertEquals(before, Fixtures.documents(out, "train", tok));
  }

  /** The two prepared folders hold shards of the same names and the same bytes. */
  private static void assertSameShards(Path expected, Path actual) throws IOException {
    Map<String, FileTime> names = shardTimes(expected);
    assertEquals(names.keySet(), shardTimes(actual).keySet());
    for (String n : names.keySet()) {
      assertArrayEquals(
          Files.readAllBytes(expected.resolve("shards").resolve(n)),
          Files.readAllBytes(actual.resolve("shards").resolve(n)),
          n);
    }
  }
}
