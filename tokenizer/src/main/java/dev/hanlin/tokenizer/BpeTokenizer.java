package dev.hanlin.tokenizer;

import dev.hanlin.tokenizer.SentencePieceModel.Piece;
import dev.hanlin.tokenizer.SentencePieceModel.Type;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * SentencePiece BPE with the exact semantics of {@code bpe_model.cc} and {@code
 * sentencepiece_processor.cc}: the identity normalizer (dummy prefix, whitespace as ▁), the
 * best-scoring adjacent pair merged first with ties going to the leftmost, user-defined pieces
 * matched greedily and never merged, unknown characters as UTF-8 byte pieces (byte fallback) or one
 * {@code <unk>} per run, and decode's handling of the leading ▁, bytes and control pieces.
 *
 * <p>Speed comes from two facts that keep it exact. A merge can only join two characters that are
 * adjacent somewhere inside a vocabulary piece, so the text is cut wherever two neighbours never
 * are, and each short segment is merged on its own (the result cannot differ: no merge crosses the
 * cut). Segments repeat (words), so each thread caches the ids of short segments. Encoding is
 * thread-safe: all mutable state is per thread.
 */
public final class BpeTokenizer implements Tokenizer {
  private static final char SPACE_SYMBOL = '\u2581';
  private static final int SMALL_SEGMENT = 24; // linear scans below, a heap above
  private static final int CACHE_MAX_SYMBOLS = 32;

  private final SentencePieceModel model;
  private final String[] pieces;
  private final Type[] types;
  private final int vocab;
  private final int unkId;
  private final int bosId;
  private final int eosId;
  private final boolean byteFallback;
  private final boolean addDummyPrefix;
  private final boolean removeExtraWhitespaces;
  private final boolean escapeWhitespaces;
  private final String unkSurface;
  private final int[] byteIds = new int[256];
  private final int[] byteOfId;

  /** Symbol id of each BMP character: a piece id, a virtual id (>= vocab), or -1 (unknown). */
  private final int[] bmpSymbol = new int[65536];

  private final Map<Integer, Integer> supplementarySymbol = new HashMap<>();
  private final int[] virtualCodePoint;
  private final LongIntMap merges;

  /** Merge priority of each piece: lower merges first; equal scores share a rank. */
  private final int[] rank;

  private final LongIntMap adjacentInPiece;

  /** The same for ASCII and ▁ (most of English and code), as a small table that stays in cache. */
  private final boolean[] adjacentDense = new boolean[DENSE * DENSE];

  private static final int DENSE = 129;
  private final String[] userDefined; // longest first, or empty
  private final Map<String, Integer> pieceToId = new HashMap<>();
  private final String[] decoded; // piece text with ▁ as space
  private final String fingerprint;
  private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

  /** Builds the encoder for a model; only BPE with the identity normalizer is supported. */
  public BpeTokenizer(SentencePieceModel model) {
    if (model.modelType() != 2) {
      throw new IllegalArgumentException(
          "only BPE SentencePiece models are supported, this one has model_type "
              + model.modelType());
    }
    if (model.hasCharsMap()) {
      throw new IllegalArgumentException(
          "normalizer '"
              + model.normalizerName()
              + "' uses a precompiled charsmap;"
              + " only the identity normalizer (Llama) is supported");
    }
    if (model.treatWhitespaceAsSuffix()) {
      throw new IllegalArgumentException("treat_whitespace_as_suffix is not supported");
    }
    this.model = model;
    List<Piece> ps = model.pieces();
    vocab = ps.size();
    pieces = new String[vocab];
    types = new Type[vocab];
    decoded = new String[vocab];
    byteOfId = new int[vocab];
    Arrays.fill(byteIds, -1);
    Arrays.fill(byteOfId, -1);
    byteFallback = model.byteFallback();
    addDummyPrefix = model.addDummyPrefix();
    removeExtraWhitespaces = model.removeExtraWhitespaces();
    escapeWhitespaces = model.escapeWhitespaces();
    unkSurface = model.unkSurface();
    int unk = -1;
    Map<String, Integer> mergeable = new HashMap<>(); // SentencePiece's pieces_
    List<String> user = new ArrayList<>();
    for (int id = 0; id < vocab; id++) {
      Piece p = ps.get(id);
      pieces[id] = p.text();
      types[id] = p.type();
      decoded[id] = p.text().replace(SPACE_SYMBOL, ' ');
      if (pieceToId.putIfAbsent(p.text(), id) != null) {
        throw new IllegalArgumentException("piece " + p.text() + " appears twice (id " + id + ")");
      }
      switch (p.type()) {
        case NORMAL, UNUSED -> mergeable.put(p.text(), id);
        case USER_DEFINED -> {
          mergeable.put(p.text(), id);
          user.add(p.text());
        }
        case UNKNOWN -> unk = id;
        case BYTE -> {
          int b = parseBytePiece(p.text());
          if (b < 0) throw new IllegalArgumentException("byte piece " + id + " is " + p.text());
          byteIds[b] = id;
          byteOfId[id] = b;
        }
        case CONTROL -> {}
      }
    }
    if (unk < 0) throw new IllegalArgumentException("the model has no unknown piece");
    unkId = unk;
    bosId = model.bosId() < vocab ? model.bosId() : -1;
    eosId = model.eosId() < vocab ? model.eosId() : -1;
    user.sort((a, b) -> b.length() - a.length());
    userDefined = user.toArray(String[]::new);

    // Symbols: every character that is a piece or occurs inside one.
    Arrays.fill(bmpSymbol, -1);
    List<Integer> virtual = new ArrayList<>();
    adjacentInPiece = new LongIntMap(1 << 16);
    for (Map.Entry<String, Integer> e : mergeable.entrySet()) {
      String t = e.getKey();
      int first = t.codePointAt(0);
      if (Character.charCount(first) == t.length()) setSymbol(first, e.getValue());
    }
    for (String t : mergeable.keySet()) {
      int prev = -1;
      for (int i = 0; i < t.length(); ) {
        int cp = t.codePointAt(i);
        i += Character.charCount(cp);
        if (symbolOf(cp) < 0) {
          setSymbol(cp, vocab + virtual.size());
          virtual.add(cp);
        }
        if (prev >= 0) {
          adjacentInPiece.put(pairKey(prev, cp), 1);
          if (dense(prev) >= 0 && dense(cp) >= 0)
            adjacentDense[dense(prev) * DENSE + dense(cp)] = true;
        }
        prev = cp;
      }
    }
    virtualCodePoint = virtual.stream().mapToInt(Integer::intValue).toArray();

    // Merge table: (left symbol, right symbol) -> piece, for every split of every piece.
    merges = new LongIntMap(1 << 17);
    for (Map.Entry<String, Integer> e : mergeable.entrySet()) {
      String t = e.getKey();
      for (int k = t.offsetByCodePoints(0, 1); k < t.length(); k = t.offsetByCodePoints(k, 1)) {
        int l = symbolOfString(t.substring(0, k), mergeable);
        int r = symbolOfString(t.substring(k), mergeable);
        if (l >= 0 && r >= 0) merges.put(pairKey(l, r), e.getValue());
      }
    }
    float[] distinct = new float[vocab];
    for (int id = 0; id < vocab; id++) distinct[id] = ps.get(id).score();
    float[] sorted = distinct.clone();
    Arrays.sort(sorted);
    rank = new int[vocab];
    for (int id = 0; id < vocab; id++) {
      // Higher score -> lower rank; equal scores -> equal rank.
      int pos = Arrays.binarySearch(sorted, distinct[id]);
      while (pos + 1 < vocab && sorted[pos + 1] == distinct[id]) pos++;
      rank[id] = vocab - 1 - pos;
    }
    fingerprint = computeFingerprint();
  }

  private static int dense(int cp) {
    return cp < 0x80 ? cp : cp == SPACE_SYMBOL ? 0x80 : -1;
  }

  private boolean adjacent(int a, int b) {
    int da = dense(a), db = dense(b);
    if (da >= 0 && db >= 0) return adjacentDense[da * DENSE + db];
    return adjacentInPiece.contains(pairKey(a, b));
  }

  private void setSymbol(int cp, int id) {
    if (cp < 65536) bmpSymbol[cp] = id;
    else supplementarySymbol.put(cp, id);
  }

  private int symbolOf(int cp) {
    if (cp < 65536) return bmpSymbol[cp];
    Integer v = supplementarySymbol.get(cp);
    return v == null ? -1 : v;
  }

  private int symbolOfString(String s, Map<String, Integer> mergeable) {
    Integer id = mergeable.get(s);
    if (id != null) return id;
    int cp = s.codePointAt(0);
    return Character.charCount(cp) == s.length() ? symbolOf(cp) : -1;
  }

  private static long pairKey(int a, int b) {
    return ((long) a << 32) | (b & 0xffffffffL);
  }

  private static int parseBytePiece(String t) {
    if (t.length() == 6 && t.startsWith("<0x") && t.endsWith(">")) {
      try {
        return Integer.parseInt(t.substring(3, 5), 16);
      } catch (NumberFormatException e) {
        return -1;
      }
    }
    return -1;
  }

  // ---------------------------------------------------------------- encode

  @Override
  public int[] encode(String text, boolean addBos, boolean addEos) {
    Scratch s = scratch.get();
    IntList out = s.out;
    out.clear();
    if (addBos && bosId >= 0) out.add(bosId);
    s.unkRunFrom = out.size;
    encodeInto(normalize(text), s, out);
    if (addEos && eosId >= 0) out.add(eosId);
    return out.toArray();
  }

  @Override
  public Encoding encodeWithOffsets(String text, boolean addBos, boolean addEos) {
    IntList origin = new IntList();
    String norm = normalizeMapped(text, origin);
    origin.add(text.length()); // past the end
    Scratch s = scratch.get();
    IntList out = s.out;
    out.clear();
    s.unkRunFrom = 0;
    encodeInto(norm, s, out);
    int[] body = out.toArray();
    int n = body.length + (addBos && bosId >= 0 ? 1 : 0) + (addEos && eosId >= 0 ? 1 : 0);
    int[] ids = new int[n], starts = new int[n];
    int k = 0;
    if (addBos && bosId >= 0) ids[k++] = bosId; // start 0
    int pos = 0, charStart = 0, bytesLeft = 0;
    for (int i = 0; i < body.length; i++, k++) {
      int id = body[i];
      ids[k] = id;
      if (types[id] == Type.BYTE) {
        if (bytesLeft == 0) { // the first byte of the character at pos
          charStart = pos;
          char c = norm.charAt(pos);
          boolean pair =
              Character.isHighSurrogate(c)
                  && pos + 1 < norm.length()
                  && Character.isLowSurrogate(norm.charAt(pos + 1));
          int cp = pair ? norm.codePointAt(pos) : Character.isSurrogate(c) ? 0xFFFD : c;
          bytesLeft = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
          pos += pair ? 2 : 1;
        }
        starts[k] = origin.get(charStart);
        bytesLeft--;
      } else if (types[id] == Type.UNKNOWN) {
        // a run of unknown characters: up to where the next token's piece begins
        starts[k] = origin.get(pos);
        String next =
            i + 1 < body.length && types[body[i + 1]] != Type.BYTE ? pieces[body[i + 1]] : null;
        pos++;
        while (pos < norm.length() && (next == null || !norm.startsWith(next, pos))) pos++;
      } else {
        if (!norm.startsWith(pieces[id], pos))
          throw new IllegalStateException(
              "offsets lost at " + pos + " of '" + norm + "': piece '" + pieces[id] + "'");
        starts[k] = origin.get(pos);
        pos += pieces[id].length();
      }
    }
    if (addEos && eosId >= 0) {
      ids[k] = eosId;
      starts[k] = text.length();
    }
    return new Encoding(ids, starts);
  }

  /**
   * {@link #normalize} (kept apart so that encoding's hot path stays as it is; a test checks the
   * two agree) that also records, for each char of the result, the index in {@code text} it comes
   * from; the dummy prefix comes from index 0.
   */
  String normalizeMapped(String text, IntList origin) {
    StringBuilder b = new StringBuilder(text.length() + 1);
    if (removeExtraWhitespaces) {
      boolean space = true; // drops leading spaces
      for (int i = 0; i < text.length(); i++) {
        char c = text.charAt(i);
        if (c == ' ' && space) continue;
        b.append(c);
        origin.add(i);
        space = c == ' ';
      }
      while (!b.isEmpty() && b.charAt(b.length() - 1) == ' ') {
        b.setLength(b.length() - 1);
        origin.size--;
      }
    } else {
      b.append(text);
      for (int i = 0; i < text.length(); i++) origin.add(i);
    }
    if (b.isEmpty()) return "";
    if (addDummyPrefix) {
      b.insert(0, ' ');
      int[] shifted = origin.toArray();
      origin.clear();
      origin.add(0);
      for (int o : shifted) origin.add(o);
    }
    String t = b.toString();
    return escapeWhitespaces ? t.replace(' ', SPACE_SYMBOL) : t;
  }

  /**
   * Encodes text that is already in normalized form (whitespace as ▁, no dummy prefix added), as a
   * piece's own text is. {@code encodeNormalized(piece(id))} is {@code [id]} for every piece that
   * BPE can produce.
   */
  public int[] encodeNormalized(String normalized) {
    Scratch s = scratch.get();
    s.out.clear();
    s.unkRunFrom = 0;
    encodeInto(normalized, s, s.out);
    return s.out.toArray();
  }

  /** SentencePiece's identity normalizer: optional whitespace cleanup, dummy prefix, ▁. */
  String normalize(String text) {
    if (removeExtraWhitespaces) {
      StringBuilder b = new StringBuilder(text.length());
      boolean space = true; // drops leading spaces
      for (int i = 0; i < text.length(); i++) {
        char c = text.charAt(i);
        if (c == ' ') {
          if (!space) b.append(' ');
          space = true;
        } else {
          b.append(c);
          space = false;
        }
      }
      while (!b.isEmpty() && b.charAt(b.length() - 1) == ' ') b.setLength(b.length() - 1);
      text = b.toString();
    }
    if (text.isEmpty()) return text;
    if (addDummyPrefix) text = " " + text;
    return escapeWhitespaces ? text.replace(' ', SPACE_SYMBOL) : text;
  }

  private void encodeInto(String t, Scratch s, IntList out) {
    int n = 0; // symbols in the current segment
    int prev = -1;
    int len = t.length();
    for (int i = 0; i < len; ) {
      char ch = t.charAt(i);
      int cp;
      if (Character.isHighSurrogate(ch)
          && i + 1 < len
          && Character.isLowSurrogate(t.charAt(i + 1))) {
        cp = Character.toCodePoint(ch, t.charAt(i + 1));
        i += 2;
      } else {
        // A lone surrogate is invalid UTF-8 to SentencePiece, which reads it as U+FFFD.
        cp = Character.isSurrogate(ch) ? 0xFFFD : ch;
        i++;
      }
      if (userDefined.length > 0) {
        int m = matchUserDefined(t, i - Character.charCount(cp));
        if (m > 0) {
          if (n > 0) n = flush(s, n, out);
          String u = t.substring(i - Character.charCount(cp), i - Character.charCount(cp) + m);
          emit(pieceToId.get(u), -1, s, out);
          i += m - Character.charCount(cp);
          prev = -1;
          continue;
        }
      }
      if (n > 0 && !adjacent(prev, cp)) n = flush(s, n, out);
      s.ensure(n + 1);
      s.sym[n] = symbolOf(cp);
      s.cp[n] = cp;
      n++;
      prev = cp;
    }
    if (n > 0) flush(s, n, out);
  }

  private int matchUserDefined(String t, int at) {
    for (String u : userDefined) {
      if (t.startsWith(u, at)) return u.length();
    }
    return 0;
  }

  /** Encodes the segment in s.sym[0..n) and returns 0 (the new segment length). */
  private int flush(Scratch s, int n, IntList out) {
    if (n == 1) {
      emit(s.sym[0], s.cp[0], s, out);
      return 0;
    }
    Cache c = s.cache;
    int h = 0;
    boolean cacheable = n <= CACHE_MAX_SYMBOLS;
    if (cacheable) {
      for (int i = 0; i < n; i++) h = h * 0x9E3779B1 + s.sym[i];
      h ^= h >>> 15;
      int[] hit = c.get(s.sym, n, h);
      if (hit != null) {
        for (int id : hit) out.add(id);
        return 0;
      }
    }
    int start = out.size;
    s.sawUnknown = false;
    if (n <= SMALL_SEGMENT) mergeLinear(s, n);
    else mergeHeap(s, n);
    for (int i = 0; i != -1; i = s.next[i]) emit(s.sym[i], s.cp[i], s, out);
    if (cacheable && (byteFallback || !s.sawUnknown)) c.put(s.symCopy(n), out.copy(start), h);
    return 0;
  }

  private int merge(int a, int b) {
    return merges.get(pairKey(a, b));
  }

  /** Best pair first, ties to the leftmost: a linear scan per merge, for short segments. */
  private void mergeLinear(Scratch s, int n) {
    int[] sym = s.sym, next = s.next, prev = s.prev, at = s.mergeAt;
    for (int i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
      at[i] = i + 1 < n ? merge(sym[i], sym[i + 1]) : -1;
    }
    while (true) {
      int best = -1;
      int bestRank = Integer.MAX_VALUE;
      for (int i = 0; i != -1; i = next[i]) {
        int m = at[i];
        if (m >= 0 && rank[m] < bestRank) {
          bestRank = rank[m];
          best = i;
        }
      }
      if (best < 0) return;
      applyMerge(s, best, at[best]);
      int nn = next[best];
      at[best] = nn < 0 ? -1 : merge(sym[best], sym[nn]);
      int p = prev[best];
      if (p >= 0) at[p] = merge(sym[p], sym[best]);
    }
  }

  private void applyMerge(Scratch s, int left, int merged) {
    int right = s.next[left];
    if (types[merged] == Type.UNUSED) s.recordUnused(merged, s.sym[left], s.sym[right]);
    s.sym[left] = merged;
    int nn = s.next[right];
    s.next[left] = nn;
    if (nn >= 0) s.prev[nn] = left;
  }

  /**
   * The same order with a binary heap of (rank, left) keys, for long segments. An entry is live
   * while the pair now starting at {@code left} still merges with that rank; an equal key for the
   * current pair is always also present, so this pops exactly what SentencePiece's agenda pops.
   */
  private void mergeHeap(Scratch s, int n) {
    int[] sym = s.sym, next = s.next, prev = s.prev;
    LongHeap heap = s.heap;
    heap.clear();
    for (int i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
      if (i + 1 < n) {
        int m = merge(sym[i], sym[i + 1]);
        if (m >= 0) heap.push(((long) rank[m] << 32) | i);
      }
    }
    boolean[] dead = s.dead;
    Arrays.fill(dead, 0, n, false);
    while (heap.size > 0) {
      long key = heap.pop();
      int left = (int) key;
      int r = (int) (key >>> 32);
      if (dead[left] || next[left] < 0) continue;
      int m = merge(sym[left], sym[next[left]]);
      if (m < 0 || rank[m] != r) continue;
      dead[next[left]] = true;
      applyMerge(s, left, m);
      int p = prev[left];
      if (p >= 0) {
        int pm = merge(sym[p], sym[left]);
        if (pm >= 0) heap.push(((long) rank[pm] << 32) | p);
      }
      int nn = next[left];
      if (nn >= 0) {
        int nm = merge(sym[left], sym[nn]);
        if (nm >= 0) heap.push(((long) rank[nm] << 32) | left);
      }
    }
  }

  /** Appends the ids for one final symbol: a piece, or an unknown character's fallback. */
  private void emit(int symbol, int cp, Scratch s, IntList out) {
    if (symbol >= 0 && symbol < vocab) {
      if (types[symbol] == Type.UNUSED && s.resegment(symbol, this, out)) return;
      out.add(symbol);
      return;
    }
    s.sawUnknown = true;
    if (cp < 0) cp = symbol >= vocab ? virtualCodePoint[symbol - vocab] : 0xFFFD;
    if (byteFallback) {
      if (cp < 0x80) {
        addByte(cp, out);
      } else if (cp < 0x800) {
        addByte(0xC0 | (cp >> 6), out);
        addByte(0x80 | (cp & 0x3F), out);
      } else if (cp < 0x10000) {
        addByte(0xE0 | (cp >> 12), out);
        addByte(0x80 | ((cp >> 6) & 0x3F), out);
        addByte(0x80 | (cp & 0x3F), out);
      } else {
        addByte(0xF0 | (cp >> 18), out);
        addByte(0x80 | ((cp >> 12) & 0x3F), out);
        addByte(0x80 | ((cp >> 6) & 0x3F), out);
        addByte(0x80 | (cp & 0x3F), out);
      }
    } else if (out.size <= s.unkRunFrom || out.get(out.size - 1) != unkId) {
      out.add(unkId); // SentencePiece merges a run of unknown characters into one <unk>
    }
  }

  private void addByte(int b, IntList out) {
    out.add(byteIds[b] >= 0 ? byteIds[b] : unkId);
  }

  void emitResegmented(int symbol, Scratch s, IntList out) {
    emit(symbol, -1, s, out);
  }

  // ---------------------------------------------------------------- decode

  @Override
  public String decode(int[] ids) {
    StringBuilder text = new StringBuilder(ids.length * 4);
    byte[] bytes = new byte[16];
    int nBytes = 0;
    boolean isBosWs = true;
    boolean bosWsSeen = false;
    for (int id : ids) {
      if (id < 0 || id >= vocab) throw new IllegalArgumentException("invalid id " + id);
      if (byteOfId[id] >= 0) {
        if (nBytes == bytes.length) bytes = Arrays.copyOf(bytes, nBytes * 2);
        bytes[nBytes++] = (byte) byteOfId[id];
        continue;
      }
      appendBytes(text, bytes, nBytes);
      nBytes = 0;
      if (bosWsSeen || !text.isEmpty()) isBosWs = false;
      bosWsSeen = false;
      switch (types[id]) {
        case CONTROL -> {}
        case UNKNOWN -> text.append(unkSurface);
        default -> {
          String p = pieces[id];
          if (isBosWs
              && (addDummyPrefix || removeExtraWhitespaces)
              && p.charAt(0) == SPACE_SYMBOL) {
            text.append(decoded[id], 1, decoded[id].length());
            bosWsSeen = !removeExtraWhitespaces;
          } else {
            text.append(decoded[id]);
          }
        }
      }
    }
    appendBytes(text, bytes, nBytes);
    return text.toString();
  }

  /** UTF-8 as SentencePiece reads it: each invalid byte becomes U+FFFD. */
  private static void appendBytes(StringBuilder text, byte[] b, int n) {
    int i = 0;
    while (i < n) {
      int b0 = b[i] & 0xff;
      int len = 1;
      int cp = -1;
      if (b0 < 0x80) {
        cp = b0;
      } else if ((b0 & 0xE0) == 0xC0 && i + 1 < n && trail(b[i + 1])) {
        int c = ((b0 & 0x1F) << 6) | (b[i + 1] & 0x3F);
        if (c >= 0x80) {
          cp = c;
          len = 2;
        }
      } else if ((b0 & 0xF0) == 0xE0 && i + 2 < n && trail(b[i + 1]) && trail(b[i + 2])) {
        int c = ((b0 & 0x0F) << 12) | ((b[i + 1] & 0x3F) << 6) | (b[i + 2] & 0x3F);
        if (c >= 0x800 && (c < 0xD800 || c >= 0xE000)) {
          cp = c;
          len = 3;
        }
      } else if ((b0 & 0xF8) == 0xF0
          && i + 3 < n
          && trail(b[i + 1])
          && trail(b[i + 2])
          && trail(b[i + 3])) {
        int c =
            ((b0 & 0x07) << 18)
                | ((b[i + 1] & 0x3F) << 12)
                | ((b[i + 2] & 0x3F) << 6)
                | (b[i + 3] & 0x3F);
        if (c >= 0x10000 && c <= 0x10FFFF) {
          cp = c;
          len = 4;
        }
      }
      text.appendCodePoint(cp < 0 ? 0xFFFD : cp);
      i += len;
    }
  }

  private static boolean trail(byte b) {
    return (b & 0xC0) == 0x80;
  }

  // ---------------------------------------------------------------- vocabulary

  @Override
  public int vocabSize() {
    return vocab;
  }

  @Override
  public int bosId() {
    return bosId;
  }

  @Override
  public int eosId() {
    return eosId;
  }

  @Override
  public int unkId() {
    return unkId;
  }

  @Override
  public String piece(int id) {
    return pieces[id];
  }

  /** The piece's type (normal, control, byte, ...). */
  public Type type(int id) {
    return types[id];
  }

  /** The id of a piece text, or -1. */
  public int pieceId(String piece) {
    Integer id = pieceToId.get(piece);
    return id == null ? -1 : id;
  }

  /** The model this tokenizer encodes with (for writing it out). */
  public SentencePieceModel model() {
    return model;
  }

  @Override
  public String fingerprint() {
    return fingerprint;
  }

  /**
   * SHA-256 over what gives ids their meaning: every piece's text and type, and the normalizer and
   * fallback settings. Scores are left out so that tokenizer.model and the tokenizer.json written
   * from it (which keeps merges, not scores) have the same fingerprint.
   */
  private String computeFingerprint() {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      String head =
          "hanlin-sentencepiece-bpe/1 dummy_prefix="
              + addDummyPrefix
              + " remove_extra_ws="
              + removeExtraWhitespaces
              + " escape_ws="
              + escapeWhitespaces
              + " byte_fallback="
              + byteFallback
              + " vocab="
              + vocab
              + "\n";
      md.update(head.getBytes(StandardCharsets.UTF_8));
      for (int id = 0; id < vocab; id++) {
        md.update((pieces[id] + "\t" + types[id].name() + "\n").getBytes(StandardCharsets.UTF_8));
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public String toString() {
    return "BpeTokenizer[vocab=" + vocab + ", fingerprint=" + fingerprint.substring(0, 12) + "]";
  }

  // ---------------------------------------------------------------- per-thread state

  /** Per-thread buffers, so that encode allocates only its result. */
  static final class Scratch {
    int[] sym = new int[256];
    int[] cp = new int[256];
    int[] next = new int[256];
    int[] prev = new int[256];
    int[] mergeAt = new int[256];
    boolean[] dead = new boolean[256];
    final LongHeap heap = new LongHeap();
    final IntList out = new IntList();
    final Cache cache = new Cache();
    int unkRunFrom;
    boolean sawUnknown;
    Map<Integer, int[]> unusedParts;

    void ensure(int n) {
      if (n > sym.length) {
        int m = Math.max(n, sym.length * 2);
        sym = Arrays.copyOf(sym, m);
        cp = Arrays.copyOf(cp, m);
        next = Arrays.copyOf(next, m);
        prev = Arrays.copyOf(prev, m);
        mergeAt = Arrays.copyOf(mergeAt, m);
        dead = Arrays.copyOf(dead, m);
      }
    }

    int[] symCopy(int n) {
      return Arrays.copyOf(sym, n);
    }

    void recordUnused(int merged, int left, int right) {
      if (unusedParts == null) unusedParts = new HashMap<>();
      unusedParts.put(merged, new int[] {left, right});
    }

    /** An unused piece is split back into the two symbols that formed it. */
    boolean resegment(int symbol, BpeTokenizer t, IntList out) {
      int[] parts = unusedParts == null ? null : unusedParts.get(symbol);
      if (parts == null) return false;
      t.emitResegmented(parts[0], this, out);
      t.emitResegmented(parts[1], this, out);
      return true;
    }
  }

  /** A growable int array. */
  static final class IntList {
    int[] a = new int[1024];
    int size;

    void clear() {
      size = 0;
    }

    void add(int v) {
      if (size == a.length) a = Arrays.copyOf(a, size * 2);
      a[size++] = v;
    }

    int get(int i) {
      return a[i];
    }

    int[] toArray() {
      return Arrays.copyOf(a, size);
    }

    int[] copy(int from) {
      return Arrays.copyOfRange(a, from, size);
    }
  }

  /** Per-thread segment cache: symbol sequence -> ids; cleared when full. */
  static final class Cache {
    private static final int SLOTS = 1 << 16;
    private final int[][] keys = new int[SLOTS][];
    private final int[][] values = new int[SLOTS][];
    private final int[] hashes = new int[SLOTS];
    private int used;

    int[] get(int[] sym, int n, int h) {
      for (int probe = 0, i = h & (SLOTS - 1); probe < 8; probe++, i = (i + 1) & (SLOTS - 1)) {
        int[] k = keys[i];
        if (k == null) return null;
        if (hashes[i] == h && k.length == n && Arrays.equals(k, 0, n, sym, 0, n)) return values[i];
      }
      return null;
    }

    void put(int[] key, int[] value, int h) {
      if (used > SLOTS / 2) {
        Arrays.fill(keys, null);
        Arrays.fill(values, null);
        used = 0;
      }
      for (int probe = 0, i = h & (SLOTS - 1); probe < 8; probe++, i = (i + 1) & (SLOTS - 1)) {
        if (keys[i] == null) {
          keys[i] = key;
          values[i] = value;
          hashes[i] = h;
          used++;
          return;
        }
      }
    }
  }

  /** A binary min-heap of longs. */
  static final class LongHeap {
    long[] a = new long[64];
    int size;

    void clear() {
      size = 0;
    }

    void push(long v) {
      if (size == a.length) a = Arrays.copyOf(a, size * 2);
      int i = size++;
      while (i > 0) {
        int p = (i - 1) >>> 1;
        if (a[p] <= v) break;
        a[i] = a[p];
        i = p;
      }
      a[i] = v;
    }

    long pop() {
      long top = a[0];
      long v = a[--size];
      int i = 0;
      while (true) {
        int c = 2 * i + 1;
        if (c >= size) break;
        if (c + 1 < size && a[c + 1] < a[c]) c++;
        if (a[c] >= v) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = v;
      return top;
    }
  }

  /** Open addressing long -> int map (-1 when absent); read-only after construction. */
  static final class LongIntMap {
    private long[] keys;
    private int[] values;
    private boolean[] full;
    private int size;
    private int mask;

    LongIntMap(int capacity) {
      int c = Integer.highestOneBit(Math.max(16, capacity) - 1) << 1;
      keys = new long[c];
      values = new int[c];
      full = new boolean[c];
      mask = c - 1;
    }

    private static int slot(long k) {
      long h = k * 0x9E3779B97F4A7C15L;
      return (int) (h ^ (h >>> 29));
    }

    void put(long k, int v) {
      if ((size + 1) * 2 > keys.length) grow();
      int i = slot(k) & mask;
      while (full[i] && keys[i] != k) i = (i + 1) & mask;
      if (!full[i]) size++;
      full[i] = true;
      keys[i] = k;
      values[i] = v;
    }

    int get(long k) {
      int i = slot(k) & mask;
      while (full[i]) {
        if (keys[i] == k) return values[i];
        i = (i + 1) & mask;
      }
      return -1;
    }

    boolean contains(long k) {
      return get(k) >= 0;
    }

    private void grow() {
      long[] ok = keys;
      int[] ov = values;
      boolean[] of = full;
      keys = new long[ok.length * 2];
      values = new int[ok.length * 2];
      full = new boolean[ok.length * 2];
      mask = keys.length - 1;
      size = 0;
      for (int i = 0; i < ok.length; i++) if (of[i]) put(ok[i], ov[i]);
    }
  }
}
