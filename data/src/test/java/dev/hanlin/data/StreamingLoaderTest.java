package dev.hanlin.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StreamingLoaderTest {
  @TempDir static Path dir;
  static final Tokenizer TOK = new Fixtures.ByteTokenizer();
  static List<Path> files;
  static long[] stream;
  static final DocumentReader.Options READ = new DocumentReader.Options("text", false, false);
  static final int T = 16;

  @BeforeAll
  static void inputs() throws Exception {
    List<String> zh = Fixtures.chinese();
    List<String> en = Fixtures.english();
    files =
        List.of(
            Fixtures.write(dir.resolve("a.jsonl"), Fixtures.jsonl(zh, "text")),
            Fixtures.write(dir.resolve("b.txt.gz"), String.join("\n", en) + "\n\n"));
    List<Long> all = new ArrayList<>();
    for (String d : zh) for (int id : TOK.encode(d, true, true)) all.add((long) id);
    for (String d : en) for (int id : TOK.encode(d, true, true)) all.add((long) id);
    stream = all.stream().mapToLong(Long::longValue).toArray();
  }

  static StreamingLoader loader(StreamingLoader.Options o, StreamCursor c) {
    return new StreamingLoader(files, READ, TOK, o, c);
  }

  static List<long[]> rows(StreamingLoader.StreamBatch b) {
    long[] flat = b.tokens().toLongArray();
    int w = (int) b.tokens().size(1);
    List<long[]> out = new ArrayList<>();
    for (int i = 0; i < flat.length / w; i++) out.add(Arrays.copyOfRange(flat, i * w, i * w + w));
    return out;
  }

  @Test
  void everyBufferIsAShuffleOfConsecutiveStreamWindows() {
    var o = StreamingLoader.Options.of(T, 4, 3, 40).withWorkers(2).withShuffleFiles(false);
    Map<String, Integer> expected = new HashMap<>();
    long windows = (stream.length - 1) / T;
    for (int k = 0; k < windows; k++) {
      expected.merge(
          Arrays.toString(Arrays.copyOfRange(stream, k * T, k * T + T + 1)), 1, Integer::sum);
    }
    List<String> firstBuffer = new ArrayList<>();
    int seen = 0;
    try (StreamingLoader sl = loader(o, StreamCursor.START)) {
      assertEquals(40, sl.bufferWindows());
      while (true) {
        try (var b = sl.next()) {
          for (long[] r : rows(b)) {
            String key = Arrays.toString(r);
            assertTrue(expected.merge(key, -1, Integer::sum) >= 0, "window not in the stream");
            if (seen < 40) firstBuffer.add(key);
            seen++;
          }
          if (b.cursor().epoch() == 1) break;
        }
      }
    }
    assertEquals(windows / 40 * 40 + (windows % 40) / 4 * 4, seen, "only the remainder dropped");
    List<String> firstInOrder = new ArrayList<>();
    for (int k = 0; k < 40; k++) {
      firstInOrder.add(Arrays.toString(Arrays.copyOfRange(stream, k * T, k * T + T + 1)));
    }
    assertNotEquals(firstInOrder, firstBuffer, "shuffled");
    firstBuffer.sort(null);
    firstInOrder.sort(null);
    assertEquals(firstInOrder, firstBuffer, "the first buffer is windows 0..39");
  }

  @Test
  void fileOrderIsAPermutationDrawnPerEpoch() throws Exception {
    List<Path> many = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      many.add(Fixtures.write(dir.resolve("m" + i + ".txt"), Fixtures.english().get(i) + "\n"));
    }
    var o = StreamingLoader.Options.of(T, 1, 1, 4);
    try (StreamingLoader sl = new StreamingLoader(many, READ, TOK, o, StreamCursor.START)) {
      int[] e0 = sl.fileOrder(0);
      int[] e1 = sl.fileOrder(1);
      assertEquals(List.of(0, 1, 2, 3, 4, 5, 6, 7), Arrays.stream(e0).sorted().boxed().toList());
      assertNotEquals(Arrays.toString(e0), Arrays.toString(e1));
      assertArrayEquals(e0, sl.fileOrder(0));
    }
    try (StreamingLoader sl =
        new StreamingLoader(many, READ, TOK, o.withShuffleFiles(false), StreamCursor.START)) {
      assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7}, sl.fileOrder(3));
    }
  }

  @Test
  void badRecordsAreSkippedAndCounted() throws Exception {
    Path bad =
        Fixtures.write(
            dir.resolve("bad.jsonl"),
            Fixtures.jsonl(Fixtures.english(), "text") + "{oops\n{\"body\": 1}\n\n");
    var o = StreamingLoader.Options.of(T, 2, 1, 8);
    try (StreamingLoader sl = new StreamingLoader(List.of(bad), READ, TOK, o, StreamCursor.START)) {
      while (sl.next().cursor().epoch() == 0) {
        // one pass
      }
      // The builder may already be reading the next pass: counts grow by (1, 2, 0) a pass.
      var k = sl.skipped();
      assertTrue(k.emptyDocuments() >= 1, k.toString());
      assertEquals(new StreamingLoader.Skipped(k.emptyDocuments(), 2 * k.emptyDocuments(), 0), k);
    }
  }

  @Test
  void ranksTogetherYieldTheSingleRankBatchesForOneTwoAndFour() {
    int steps = 25; // crosses several buffers
    List<List<long[]>> ref = run(StreamingLoader.Options.of(T, 4, 5, 24), steps);
    for (int world : new int[] {2, 4}) {
      List<List<List<long[]>>> perRank = new ArrayList<>();
      for (int r = 0; r < world; r++) {
        perRank.add(run(StreamingLoader.Options.of(T, 4 / world, 5, 24).withRank(r, world), steps));
      }
      for (int s = 0; s < steps; s++) {
        List<long[]> joined = new ArrayList<>();
        for (int r = 0; r < world; r++) joined.addAll(perRank.get(r).get(s));
        assertEquals(ref.get(s).size(), joined.size());
        for (int i = 0; i < joined.size(); i++) {
          assertArrayEquals(ref.get(s).get(i), joined.get(i), "world " + world + " step " + s);
        }
      }
    }
  }

  static List<List<long[]>> run(StreamingLoader.Options o, int steps) {
    List<List<long[]>> out = new ArrayList<>();
    try (StreamingLoader sl = loader(o, StreamCursor.START)) {
      for (int i = 0; i < steps; i++) {
        try (var b = sl.next()) {
          out.add(rows(b));
        }
      }
    }
    return out;
  }

  @Test
  void aSavedCursorResumesExactlyAcrossBuffersAndEpochs() {
    var o = StreamingLoader.Options.of(T, 3, 9, 30).withWorkers(2);
    List<long[]> reference = new ArrayList<>();
    List<StreamCursor> cursors = new ArrayList<>();
    int stepsPerEpoch = -1;
    try (StreamingLoader sl = loader(o, StreamCursor.START)) {
      for (int i = 0; stepsPerEpoch < 0 || i < stepsPerEpoch + 30; i++) {
        try (var b = sl.next()) {
          reference.add(b.tokens().toLongArray());
          cursors.add(b.cursor());
          if (stepsPerEpoch < 0 && b.cursor().epoch() == 1) stepsPerEpoch = i + 1;
        }
      }
    }
    assertTrue(cursors.stream().anyMatch(c -> c.skip() > 0), "a buffer starts mid-document");
    int[] resumeAt = {0, 5, 9, 10, 11, stepsPerEpoch - 1, stepsPerEpoch + 3};
    for (int at : resumeAt) {
      try (StreamingLoader sl = loader(o.withWorkers(1 + at % 3), cursors.get(at))) {
        for (int i = at + 1; i < Math.min(reference.size(), at + 25); i++) {
          try (var b = sl.next()) {
            assertArrayEquals(
                reference.get(i), b.tokens().toLongArray(), "resume at " + at + ": " + i);
            assertEquals(cursors.get(i), b.cursor());
          }
        }
      }
    }
    // the second epoch repeats the stream with another order
    assertNotEquals(
        Arrays.toString(reference.getFirst()), Arrays.toString(reference.get(stepsPerEpoch)));
  }
}
