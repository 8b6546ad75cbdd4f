package dev.hanlin.data.loader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.DataException;
import dev.hanlin.data.Fixtures;
import dev.hanlin.data.Permutation;
import dev.hanlin.data.prepare.Prepare;
import dev.hanlin.data.shard.Manifest;
import dev.hanlin.data.shard.TokenDataset;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.Scope;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoaderTest {
  @TempDir static Path dir;
  static final Tokenizer TOK = new Fixtures.ByteTokenizer();
  static Path data;
  static long[] stream;

  @BeforeAll
  static void prepare() throws Exception {
    Fixtures.write(dir.resolve("a.jsonl"), Fixtures.jsonl(Fixtures.mixed(), "text"));
    data = dir.resolve("out");
    // Small shards so that windows cross shard boundaries.
    stream =
        prepareTrainStream(
            data, TOK, Map.of("shard_tokens", 700, "validation_split_percentage", 10.0));
  }

  static long[] row(long[] flat, int r, int width) {
    return Arrays.copyOfRange(flat, r * width, (r + 1) * width);
  }

  @Test
  void windowsArePackedAcrossDocumentsAndShardsWithTheRemainderDroppedOnce() throws Exception {
    int t = 64;
    try (TokenDataset ds = TokenDataset.open(data, "train", TOK.fingerprint());
        DataLoader dl =
            new DataLoader(ds, LoaderOptions.of(t, 1, 0).withShuffle(false), Cursor.START)) {
      assertTrue(ds.shards().size() > 5, "several shards");
      assertEquals(stream.length, ds.tokenCount());
      long w = (stream.length - 1) / t;
      assertEquals(w, dl.stepsPerEpoch());
      for (long k = 0; k < w; k++) {
        try (Batch b = dl.next()) {
          assertArrayEquals(new long[] {1, t + 1}, b.tokens().shape());
          long[] got = b.tokens().toLongArray();
          assertArrayEquals(Arrays.copyOfRange(stream, (int) (k * t), (int) (k * t + t + 1)), got);
          try (Scope s = Scope.open()) {
            assertArrayEquals(Arrays.copyOf(got, t), b.inputs().contiguous().toLongArray());
            assertArrayEquals(
                Arrays.copyOfRange(got, 1, t + 1), b.targets().contiguous().toLongArray());
          }
        }
      }
      assertEquals(new Cursor(1, 0), dl.cursor(), "one epoch is exactly W windows");
    }
  }

  @Test
  void uint32ShardsLoadTheSameIds() throws Exception {
    var wide = new Fixtures.ByteTokenizer(70_000);
    Path out = dir.resolve("wide");
    long[] all = prepareTrainStream(out, wide, Map.of("shard_tokens", 700));
    int t = 40;
    try (TokenDataset ds = TokenDataset.open(out, "train", wide.fingerprint());
        DataLoader dl =
            new DataLoader(ds, LoaderOptions.of(t, 2, 0).withShuffle(false), Cursor.START)) {
      assertEquals(dev.hanlin.torch.DType.U32, ds.shards().getFirst().dtype());
      for (int k = 0; k < 20; k++) {
        try (Batch b = dl.next()) {
          long[] got = b.tokens().toLongArray();
          for (int i = 0; i < got.length; i++) {
            long global = (2L * k + i / (t + 1)) * t + i % (t + 1);
            assertEquals(all[(int) global], got[i]);
          }
          assertTrue(Arrays.stream(got).anyMatch(x -> x > 65_535));
        }
      }
    }
  }

  @Test
  void shuffleIsTheSameForOneTwoAndFourRanksWithDisjointShares() {
    long windows = 1003;
    int global = 8;
    BlockSampler one = new BlockSampler(windows, global, 0, 1, 5, true);
    List<BlockSampler> two = List.of(sampler(windows, 4, 0, 2), sampler(windows, 4, 1, 2));
    List<BlockSampler> four = new ArrayList<>();
    for (int r = 0; r < 4; r++) four.add(sampler(windows, 2, r, 4));
    Cursor c = Cursor.START;
    Set<Long> seen = new HashSet<>();
    for (long step = 0; step < 2 * one.stepsPerEpoch() + 3; step++) {
      long[] ref = one.windows(c);
      assertArrayEquals(ref, concat(two, c));
      assertArrayEquals(ref, concat(four, c));
      if (c.epoch() == 0) for (long w : ref) assertTrue(seen.add(w), "window twice in an epoch");
      c = one.advance(c);
    }
    assertEquals(one.stepsPerEpoch() * global, seen.size());
    assertEquals(125, one.stepsPerEpoch());
    long[] e0 = one.windows(new Cursor(0, 0));
    long[] e1 = one.windows(new Cursor(1, 0));
    assertFalse(Arrays.equals(e0, e1), "each epoch has its own order");
    assertFalse(
        Arrays.equals(e0, new BlockSampler(windows, global, 0, 1, 6, true).windows(Cursor.START)),
        "the seed changes the order");
  }

  private static BlockSampler sampler(long windows, int b, int rank, int world) {
    return new BlockSampler(windows, b, rank, world, 5, true);
  }

  private static long[] concat(List<BlockSampler> ranks, Cursor c) {
    long[] out = new long[0];
    for (BlockSampler s : ranks) {
      long[] w = s.windows(c);
      long[] n = Arrays.copyOf(out, out.length + w.length);
      System.arraycopy(w, 0, n, out.length, w.length);
      out = n;
    }
    return out;
  }

  @Test
  void loadersOfTwoRanksTogetherYieldTheSingleRankBatches() throws Exception {
    int t = 32;
    try (TokenDataset ds = TokenDataset.open(data, "train", TOK.fingerprint());
        DataLoader single = new DataLoader(ds, LoaderOptions.of(t, 4, 9), Cursor.START);
        DataLoader r0 = new DataLoader(ds, LoaderOptions.of(t, 2, 9).withRank(0, 2), Cursor.START);
        DataLoader r1 =
            new DataLoader(ds, LoaderOptions.of(t, 2, 9).withRank(1, 2), Cursor.START)) {
      for (int step = 0; step < 5; step++) {
        try (Batch a = single.next();
            Batch b0 = r0.next();
            Batch b1 = r1.next()) {
          long[] all = a.tokens().toLongArray();
          long[] x0 = b0.tokens().toLongArray();
          long[] x1 = b1.tokens().toLongArray();
          long[] joined = Arrays.copyOf(x0, x0.length + x1.length);
          System.arraycopy(x1, 0, joined, x0.length, x1.length);
          assertArrayEquals(all, joined);
          assertEquals(a.cursor(), b0.cursor());
          assertEquals(a.cursor(), b1.cursor());
        }
      }
    }
  }

  @Test
  void aLoaderStartedFromASavedCursorContinuesExactlyAcrossEpochs() throws Exception {
    int t = 512;
    LoaderOptions o = LoaderOptions.of(t, 3, 11);
    try (TokenDataset ds = TokenDataset.open(data, "train", TOK.fingerprint())) {
      List<long[]> reference = new ArrayList<>();
      List<Cursor> cursors = new ArrayList<>();
      long steps;
      try (DataLoader dl = new DataLoader(ds, o, Cursor.START)) {
        steps = dl.stepsPerEpoch();
        assertTrue(steps >= 3 && steps < 12, "a few steps per epoch: " + steps);
        for (int i = 0; i < 2 * steps + 2; i++) {
          try (Batch b = dl.next()) {
            reference.add(b.tokens().toLongArray());
            cursors.add(b.cursor());
            assertEquals(b.cursor(), dl.cursor());
          }
        }
      }
      assertEquals(new Cursor(1, 0), cursors.get((int) steps - 1));
      for (int resumeAfter : new int[] {0, 2, (int) steps - 1, (int) steps + 1}) {
        Cursor saved = cursors.get(resumeAfter);
        try (DataLoader dl = new DataLoader(ds, o, saved)) {
          for (int i = resumeAfter + 1; i < reference.size(); i++) {
            try (Batch b = dl.next()) {
              assertArrayEquals(reference.get(i), b.tokens().toLongArray(), "batch " + i);
              assertEquals(cursors.get(i), b.cursor());
            }
          }
        }
      }
    }
  }

  @Test
  void theValidationSplitIsItsOwnStream() throws Exception {
    try (TokenDataset ds = TokenDataset.open(data, "validation", TOK.fingerprint())) {
      assertEquals(Manifest.read(data).splits().validation().tokens(), ds.tokenCount());
      assertTrue(ds.tokenCount() > 100);
      assertEquals(1, ds.token(0), "starts with BOS");
    }
  }

  @Test
  void aTokenizerMismatchIsAnError() {
    var e =
        assertThrows(DataException.class, () -> TokenDataset.open(data, "train", "another-tok"));
    assertTrue(e.getMessage().contains("another-tok"), e.getMessage());
    assertTrue(e.getMessage().contains(TOK.fingerprint()), e.getMessage());
  }

  @Test
  void blocksLargerThanTheSplitAreAnError() throws Exception {
    try (TokenDataset ds = TokenDataset.open(data, "validation", TOK.fingerprint())) {
      int huge = (int) ds.tokenCount() + 10;
      var e =
          assertThrows(
              DataException.class,
              () -> new DataLoader(ds, LoaderOptions.of(huge, 1, 0), Cursor.START));
      assertTrue(e.getMessage().contains("fewer than one block"), e.getMessage());
    }
  }

  @Test
  void blockSizeDefaultsToMin1024AndMaxPositionsAndIsCapped() {
    assertEquals(1024, BlockSize.resolve(null, 4096));
    assertEquals(512, BlockSize.resolve(null, 512));
    assertEquals(256, BlockSize.resolve(256, 4096));
    assertEquals(2048, BlockSize.resolve(4096, 2048));
    assertThrows(IllegalArgumentException.class, () -> BlockSize.resolve(0, 2048));
  }

  @Test
  void permutationIsABijectionForAnySize() {
    for (long n : new long[] {1, 2, 3, 5, 17, 1000, 4097, 65_537}) {
      Permutation p = new Permutation(n, 42);
      boolean[] hit = new boolean[(int) n];
      for (long i = 0; i < n; i++) {
        long v = p.apply(i);
        assertFalse(hit[(int) v], "duplicate at n=" + n);
        hit[(int) v] = true;
      }
    }
    Permutation p = new Permutation(10_000, 1);
    long fixed = 0;
    for (long i = 0; i < 10_000; i++) if (p.apply(i) == i) fixed++;
    assertTrue(fixed < 20, "looks random: " + fixed + " fixed points");
  }

  /**
   * Prepares {@code a.jsonl} of {@code dir} into {@code out} with {@code tok} and the config keys
   * {@code extra}; returns the train split's documents encoded again, end to end (the stream a
   * loader must read).
   */
  private static long[] prepareTrainStream(Path out, Tokenizer tok, Map<String, Object> extra)
      throws Exception {
    Prepare.run(
        Fixtures.config(out, List.of("a.jsonl"), extra),
        tok,
        dir,
        new PrintStream(new ByteArrayOutputStream()),
        8);
    List<Long> all = new ArrayList<>();
    for (String d : Fixtures.documents(out, "train", tok)) {
      for (int id : tok.encode(d, true, true)) all.add((long) id);
    }
    return all.stream().mapToLong(Long::longValue).toArray();
  }
}
