package dev.hanlin.tokenizer;

import dev.hanlin.tokenizer.SentencePieceModel.Piece;
import dev.hanlin.tokenizer.SentencePieceModel.Type;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ForkJoinPool;

/**
 * Extends a SentencePiece BPE vocabulary with pieces learned from Chinese text, the way
 * Llama2-Chinese and Chinese-LLaMA-2 do, but so that every new piece can actually be produced.
 *
 * <p>Base ids never change: new pieces are appended, new Han characters, punctuation and symbols
 * (and every emoji code point) first, then BPE merges learned on runs of Han characters. Each merge
 * gets a score below every earlier one, so at encode time the merges apply in the order they were
 * learned, and training follows the encoder exactly: a word starts as the base tokenizer (plus the
 * new characters) encodes it, and each merge rewrites it leftmost first. Finally every new piece is
 * checked to encode to itself; a piece that does not (another merge gets there first) is removed,
 * which Chinese-LLaMA-2's 55,296 vocabulary never did for 652 of its pieces.
 */
public final class VocabExtension {

  /**
   * @param vocabSize the size of the extended vocabulary (base included)
   * @param minFrequency a character or pair seen fewer times is not added
   * @param maxPieceLength the longest new piece, in characters (SentencePiece's default 16)
   * @param threads threads for counting
   * @param addEmoji add every emoji code point missing from the base as a piece
   */
  public record Options(
      int vocabSize, int minFrequency, int maxPieceLength, int threads, boolean addEmoji) {
    public Options {
      if (minFrequency < 1) throw new IllegalArgumentException("minFrequency must be >= 1");
      if (maxPieceLength < 2) throw new IllegalArgumentException("maxPieceLength must be >= 2");
      if (threads < 1) throw new IllegalArgumentException("threads must be >= 1");
    }

    public static Options of(int vocabSize) {
      return new Options(vocabSize, 2, 16, Runtime.getRuntime().availableProcessors(), true);
    }
  }

  /** Reports progress of a phase: {@code done} of {@code total} units. */
  public interface Progress {
    void update(String phase, long done, long total);

    Progress NONE = (phase, done, total) -> {};
  }

  /**
   * The extended model and what went into it.
   *
   * @param newCharacters Han characters and emoji added as single pieces
   * @param newMerges pieces added by BPE merges
   * @param removedUnreachable learned pieces removed because they could never be produced
   */
  public record Result(
      SentencePieceModel model,
      int newCharacters,
      int newMerges,
      int removedUnreachable,
      long corpusCharacters) {}

  private VocabExtension() {}

  /** Learns new pieces from UTF-8 text files and appends them to {@code base}. */
  public static Result extend(BpeTokenizer base, List<Path> corpus, Options o, Progress progress) {
    int v0 = base.vocabSize();
    if (o.vocabSize() <= v0) {
      throw new IllegalArgumentException(
          "--vocab-size " + o.vocabSize() + " is not larger than the base vocabulary " + v0);
    }
    Map<String, Long> words = countWords(corpus, o.threads(), progress);
    long chars = 0;
    Map<Integer, Long> charCounts = new HashMap<>();
    for (Map.Entry<String, Long> e : words.entrySet()) {
      String w = e.getKey();
      for (int i = 0; i < w.length(); ) {
        int cp = w.codePointAt(i);
        i += Character.charCount(cp);
        charCounts.merge(cp, e.getValue(), Long::sum);
        if (Character.UnicodeScript.of(cp) == Character.UnicodeScript.HAN) chars += e.getValue();
      }
    }

    // 1. New single characters: frequent Han characters, punctuation and symbols, then emoji,
    // that the base lacks.
    int budget = o.vocabSize() - v0;
    List<String> newChars = new ArrayList<>();
    // symbols are few (hundreds at most): every frequent one, then Han characters up to half the
    // budget, each list most frequent first
    for (boolean symbols : new boolean[] {true, false})
      charCounts.entrySet().stream()
          .filter(e -> e.getValue() >= o.minFrequency())
          .filter(e -> isSymbol(e.getKey()) == symbols)
          .filter(e -> base.pieceId(new String(Character.toChars(e.getKey()))) < 0)
          .sorted(
              Map.Entry.<Integer, Long>comparingByValue()
                  .reversed()
                  .thenComparing(Map.Entry.comparingByKey()))
          .limit(symbols ? budget / 2 : Math.max(0, budget / 2 - newChars.size()))
          .forEach(e -> newChars.add(new String(Character.toChars(e.getKey()))));
    if (o.addEmoji()) {
      Set<String> seen = new HashSet<>(newChars);
      for (int cp = 0x80; cp <= 0x10FFFF; cp++) {
        if (Character.isDefined(cp)
            && (Character.isEmoji(cp) || Character.isEmojiComponent(cp))
            && !Character.isDigit(cp)) {
          String s = new String(Character.toChars(cp));
          if (base.pieceId(s) < 0 && seen.add(s)) newChars.add(s);
        }
      }
    }
    if (newChars.size() > budget) newChars.subList(budget, newChars.size()).clear();

    List<Piece> basePieces = base.model().pieces();
    float s0 = 0;
    for (Piece p : basePieces) {
      if (p.type() == Type.NORMAL && p.score() > -1e8f) s0 = Math.min(s0, p.score());
    }
    List<String> learned =
        learnMerges(base, newChars, words, budget - newChars.size(), o, progress, s0);

    // 2. Keep only pieces that encode to themselves; removing one can strand others, so repeat.
    int removed = 0;
    while (true) {
      SentencePieceModel m = assemble(base, newChars, learned, s0);
      BpeTokenizer t = new BpeTokenizer(m);
      List<Integer> bad = unreachablePieces(t, v0);
      if (bad.isEmpty()) return new Result(m, newChars.size(), learned.size(), removed, chars);
      Set<String> drop = new HashSet<>();
      for (int id : bad) drop.add(t.piece(id));
      removed += drop.size();
      learned.removeIf(drop::contains);
      newChars.removeIf(drop::contains);
    }
  }

  private static SentencePieceModel assemble(
      BpeTokenizer base, List<String> chars, List<String> merges, float s0) {
    List<Piece> ps = new ArrayList<>(base.model().pieces());
    // Merges rank by learning order; single characters are never a merge result, so their
    // scores (below every merge, as SentencePiece's trainer gives them) only order the vocabulary.
    float next = s0 - 1;
    List<Piece> mergePieces = new ArrayList<>();
    for (String m : merges) mergePieces.add(new Piece(m, next--, Type.NORMAL));
    for (String c : chars) ps.add(new Piece(c, next--, Type.NORMAL));
    ps.addAll(mergePieces);
    return base.model().withPieces(ps);
  }

  /** New pieces (ids from {@code fromId}) whose own text does not encode to just themselves. */
  public static List<Integer> unreachablePieces(BpeTokenizer t, int fromId) {
    List<Integer> bad = new ArrayList<>();
    for (int id = fromId; id < t.vocabSize(); id++) {
      if (t.type(id) != Type.NORMAL && t.type(id) != Type.USER_DEFINED) continue;
      int[] ids = t.encodeNormalized(t.piece(id));
      if (ids.length != 1 || ids[0] != id) bad.add(id);
    }
    return bad;
  }

  /** Counts runs of Han characters, the units that Chinese pieces are learned from. */
  static Map<String, Long> countWords(List<Path> corpus, int threads, Progress progress) {
    Map<String, Long> counts = new ConcurrentHashMap<>();
    long total = 0;
    for (Path p : corpus) {
      try {
        total += Files.size(p);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read corpus file " + p, e);
      }
    }
    long done = 0;
    try (ForkJoinPool pool = new ForkJoinPool(threads)) {
      List<java.util.concurrent.Future<?>> pending = new ArrayList<>();
      for (Path p : corpus) {
        // Malformed UTF-8 becomes U+FFFD rather than failing a long run.
        var decoder =
            StandardCharsets.UTF_8
                .newDecoder()
                .onMalformedInput(java.nio.charset.CodingErrorAction.REPLACE)
                .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPLACE);
        try (var r =
            new java.io.BufferedReader(
                new java.io.InputStreamReader(Files.newInputStream(p), decoder), 1 << 20)) {
          List<String> batch = new ArrayList<>();
          long batchBytes = 0;
          for (String line; (line = r.readLine()) != null; ) {
            batch.add(line);
            batchBytes += line.length() * 3L + 1;
            if (batch.size() == 20_000) {
              pending.add(pool.submit(countTask(batch, counts)));
              done += batchBytes;
              batch = new ArrayList<>();
              batchBytes = 0;
              progress.update("count", Math.min(done, total), total);
              while (pending.size() > 2L * threads) join(pending.removeFirst());
            }
          }
          pending.add(pool.submit(countTask(batch, counts)));
        } catch (IOException e) {
          throw new UncheckedIOException("cannot read corpus file " + p, e);
        }
      }
      for (var f : pending) join(f);
    }
    progress.update("count", total, total);
    return counts;
  }

  private static Runnable countTask(List<String> lines, Map<String, Long> counts) {
    return () -> {
      Map<String, Long> local = new HashMap<>();
      for (String line : lines) {
        hanRuns(line, w -> local.merge(w, 1L, Long::sum));
        symbols(line, w -> local.merge(w, 1L, Long::sum));
      }
      local.forEach((w, c) -> counts.merge(w, c, Long::sum));
    };
  }

  private static void join(java.util.concurrent.Future<?> f) {
    try {
      f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    } catch (java.util.concurrent.ExecutionException e) {
      throw new IllegalStateException("counting failed: " + e.getCause(), e.getCause());
    }
  }

  /** Calls {@code sink} with each maximal run of Han characters in {@code line}. */
  public static void hanRuns(String line, java.util.function.Consumer<String> sink) {
    int start = -1;
    for (int i = 0; i <= line.length(); ) {
      int cp = i < line.length() ? line.codePointAt(i) : -1;
      boolean han = cp >= 0 && Character.UnicodeScript.of(cp) == Character.UnicodeScript.HAN;
      if (han && start < 0) start = i;
      if (!han && start >= 0) {
        sink.accept(line.substring(start, i));
        start = -1;
      }
      i += cp >= 0 ? Character.charCount(cp) : 1;
    }
  }

  /**
   * Calls {@code sink} with each punctuation mark or symbol of {@code line} (。，、《》「」…, full-width
   * forms, ¥, ·): counted as one-character words, so the frequent ones become single pieces beside
   * the Han characters. Without them a tokenizer learned from Chinese text spells {@code 。} as
   * three byte tokens, and a small model trained on it ends a line with bytes it rarely completes.
   */
  public static void symbols(String line, java.util.function.Consumer<String> sink) {
    for (int i = 0; i < line.length(); ) {
      int cp = line.codePointAt(i);
      int n = Character.charCount(cp);
      if (isSymbol(cp)) sink.accept(line.substring(i, i + n));
      i += n;
    }
  }

  static boolean isSymbol(int cp) {
    if (cp == 0xFFFD) return false; // what malformed input decodes to, not text
    if (cp >= 0xFF01 && cp <= 0xFF5E) return true; // full-width ASCII forms, letters included
    return switch (Character.getType(cp)) {
      case Character.DASH_PUNCTUATION,
          Character.START_PUNCTUATION,
          Character.END_PUNCTUATION,
          Character.CONNECTOR_PUNCTUATION,
          Character.OTHER_PUNCTUATION,
          Character.INITIAL_QUOTE_PUNCTUATION,
          Character.FINAL_QUOTE_PUNCTUATION,
          Character.MATH_SYMBOL,
          Character.CURRENCY_SYMBOL,
          Character.MODIFIER_SYMBOL,
          Character.OTHER_SYMBOL ->
          true;
      default -> false;
    };
  }

  /** One pair's count and the words it may occur in (stale entries are skipped on use). */
  private static final class PairStat {
    long count;
    int[] words = new int[4];
    int n;

    void addWord(int w) {
      if (n > 0 && words[n - 1] == w) return;
      if (n == words.length) words = Arrays.copyOf(words, n * 2);
      words[n++] = w;
    }
  }

  private static List<String> learnMerges(
      BpeTokenizer base,
      List<String> newChars,
      Map<String, Long> wordCounts,
      int maxMerges,
      Options o,
      Progress progress,
      float s0) {
    // Words start as the base tokenizer plus the new characters encodes them.
    BpeTokenizer start = new BpeTokenizer(assemble(base, newChars, List.of(), s0));
    List<String> text = new ArrayList<>();
    for (int id = 0; id < start.vocabSize(); id++) text.add(start.piece(id));
    int n = wordCounts.size();
    int[][] seq = new int[n][];
    long[] freq = new long[n];
    int w = 0;
    String[] words = new String[n];
    for (Map.Entry<String, Long> e : wordCounts.entrySet()) {
      words[w] = e.getKey();
      freq[w++] = e.getValue();
    }
    progress.update("split", 0, n);
    try (ForkJoinPool pool = new ForkJoinPool(o.threads())) {
      pool.submit(
              () ->
                  java.util.stream.IntStream.range(0, n)
                      .parallel()
                      .forEach(i -> seq[i] = start.encodeNormalized(words[i])))
          .join();
    }
    progress.update("split", n, n);
    List<Integer> lengths = new ArrayList<>();
    for (String t : text) lengths.add(t.codePointCount(0, t.length()));
    boolean[] mergeableBase = new boolean[start.vocabSize()];
    for (int id = 0; id < start.vocabSize(); id++) {
      mergeableBase[id] = start.type(id) == Type.NORMAL;
    }

    Map<Long, PairStat> pairs = new HashMap<>();
    for (int i = 0; i < n; i++) {
      int[] s = seq[i];
      for (int k = 0; k + 1 < s.length; k++) {
        if (!eligible(s[k], s[k + 1], mergeableBase, lengths, o)) continue;
        PairStat st = pairs.computeIfAbsent(key(s[k], s[k + 1]), x -> new PairStat());
        st.count += freq[i];
        st.addWord(i);
      }
    }
    Comparator<long[]> order =
        Comparator.<long[]>comparingLong(a -> -a[0]).thenComparingLong(a -> a[1]);
    PriorityQueue<long[]> heap = new PriorityQueue<>(order);
    pairs.forEach((k, st) -> heap.add(new long[] {st.count, k}));

    List<String> merged = new ArrayList<>();
    Set<String> known = new HashSet<>(text);
    int[] stamp = new int[n];
    Arrays.fill(stamp, -1);
    int[] buf = new int[64];
    while (merged.size() < maxMerges && !heap.isEmpty()) {
      long[] top = heap.poll();
      PairStat st = pairs.get(top[1]);
      if (st == null || st.count != top[0]) continue;
      if (st.count < o.minFrequency()) break;
      int a = (int) (top[1] >>> 32), b = (int) top[1];
      if (!known.add(text.get(a) + text.get(b))) {
        // Already a piece, reached by another split: the encoder merges it with that piece's
        // own score, so it is not a new piece.
        pairs.remove(top[1]);
        continue;
      }
      int m = text.size();
      text.add(text.get(a) + text.get(b));
      lengths.add(lengths.get(a) + lengths.get(b));
      merged.add(text.get(m));
      pairs.remove(top[1]);
      Set<Long> changed = new HashSet<>();
      for (int j = 0; j < st.n; j++) {
        int wi = st.words[j];
        if (stamp[wi] == m) continue;
        stamp[wi] = m;
        int[] s = seq[wi];
        boolean has = false;
        for (int k = 0; k + 1 < s.length && !has; k++) has = s[k] == a && s[k + 1] == b;
        if (!has) continue;
        long f = freq[wi];
        for (int k = 0; k + 1 < s.length; k++) {
          long pk = key(s[k], s[k + 1]);
          if (pk == top[1]) continue;
          PairStat ps = pairs.get(pk);
          if (ps != null) {
            ps.count -= f;
            changed.add(pk);
          }
        }
        if (buf.length < s.length) buf = new int[s.length];
        int len = 0;
        for (int k = 0; k < s.length; k++) {
          if (k + 1 < s.length && s[k] == a && s[k + 1] == b) {
            buf[len++] = m;
            k++;
          } else {
            buf[len++] = s[k];
          }
        }
        s = Arrays.copyOf(buf, len);
        seq[wi] = s;
        for (int k = 0; k + 1 < s.length; k++) {
          if (!eligibleNew(s[k], s[k + 1], mergeableBase, lengths, o)) continue;
          long pk = key(s[k], s[k + 1]);
          PairStat ps = pairs.computeIfAbsent(pk, x -> new PairStat());
          ps.count += f;
          if (s[k] == m || s[k + 1] == m) ps.addWord(wi);
          changed.add(pk);
        }
      }
      for (long pk : changed) {
        PairStat ps = pairs.get(pk);
        if (ps == null) continue;
        if (ps.count <= 0) pairs.remove(pk);
        else heap.add(new long[] {ps.count, pk});
      }
      if (merged.size() % 100 == 0) progress.update("merge", merged.size(), maxMerges);
    }
    progress.update("merge", merged.size(), maxMerges);
    return merged;
  }

  private static boolean eligible(int a, int b, boolean[] base, List<Integer> len, Options o) {
    return a < base.length
        && b < base.length
        && base[a]
        && base[b]
        && len.get(a) + len.get(b) <= o.maxPieceLength();
  }

  private static boolean eligibleNew(int a, int b, boolean[] base, List<Integer> len, Options o) {
    boolean okA = a >= base.length || base[a];
    boolean okB = b >= base.length || base[b];
    return okA && okB && len.get(a) + len.get(b) <= o.maxPieceLength();
  }

  private static long key(int a, int b) {
    return ((long) a << 32) | (b & 0xffffffffL);
  }
}
