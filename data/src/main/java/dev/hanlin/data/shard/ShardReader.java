package dev.hanlin.data.shard;

import dev.hanlin.data.DataException;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.zip.CRC32C;

/**
 * A memory-mapped token shard ({@link ShardFormat}). The mapping lives in a shared {@link Arena}
 * that {@link #close()} releases; tensors from {@link #tokens(long, long)} point into it without a
 * copy, are read-only, and must not be used after close.
 *
 * <p>Every token handed out ({@link #token}, {@link #tokens}) has been verified: the first read of
 * a chunk checks its CRC32C against the chunk table and that its ids are below the vocabulary size,
 * then marks it in a bitset, so the check costs one pass over the data spread across the first
 * epoch, and nothing at start. Safe for concurrent readers (two threads may verify the same chunk
 * once each). A version 1 shard, which has no chunk table, has its whole data CRC checked at open.
 * Corruption is reported as a {@link DataException} naming the shard, the chunk and the offset.
 */
public final class ShardReader implements AutoCloseable {
  private static final ValueLayout.OfShort U16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt U32 =
      ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfLong I64 =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final Path path;
  private final Arena arena;
  private final MemorySegment segment;
  private final ShardFormat.Header header;
  private final int checkBytes; // the unit of lazy checking: the chunk, or 64 KiB for version 1
  private final AtomicLongArray checked; // one bit per unit, set once it has been verified

  private ShardReader(Path path, Arena arena, MemorySegment segment, ShardFormat.Header header) {
    this.path = path;
    this.arena = arena;
    this.segment = segment;
    this.header = header;
    this.checkBytes = header.chunkBytes() > 0 ? header.chunkBytes() : ShardFormat.CHUNK_BYTES;
    long units = ShardFormat.chunks(header.tokens() * header.width(), checkBytes);
    this.checked = new AtomicLongArray(Math.toIntExact((units + 63) / 64));
  }

  /**
   * Maps {@code path} and checks its header (magic, version, header CRC, sizes, index ends) and, if
   * {@code expectedFingerprint} is not null, that the tokenizer matches.
   */
  public static ShardReader open(Path path, String expectedFingerprint) throws IOException {
    Arena arena = Arena.ofShared();
    try {
      MemorySegment seg;
      try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
        seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
      }
      var header =
          ShardFormat.Header.decode(
              path,
              seg.asSlice(0, Math.min(seg.byteSize(), ShardFormat.HEADER_BYTES)).asByteBuffer(),
              seg.byteSize());
      ShardReader r = new ShardReader(path, arena, seg, header);
      CRC32C indexCrc = new CRC32C();
      indexCrc.update(
          seg.asSlice(header.indexOffset(), 8 * (header.documents() + 1)).asByteBuffer());
      if ((int) indexCrc.getValue() != header.indexCrc()) {
        throw ShardFormat.bad(
            path,
            header.indexOffset(),
            String.format(
                "document index checksum mismatch: stored %08x, computed %08x",
                header.indexCrc(), (int) indexCrc.getValue()));
      }
      if (r.documentStart(0) != 0 || r.documentStart(header.documents()) != header.tokens()) {
        throw ShardFormat.bad(
            path,
            header.indexOffset(),
            "document index runs from "
                + r.documentStart(0)
                + " to "
                + r.documentStart(header.documents())
                + ", expected 0 to "
                + header.tokens());
      }
      if (header.version() == ShardFormat.VERSION) {
        CRC32C tableCrc = new CRC32C();
        tableCrc.update(
            seg.asSlice(header.chunkTableOffset(), 4 * header.chunkCount()).asByteBuffer());
        if ((int) tableCrc.getValue() != header.chunkTableCrc()) {
          throw ShardFormat.bad(
              path,
              header.chunkTableOffset(),
              String.format(
                  "chunk table checksum mismatch: stored %08x, computed %08x",
                  header.chunkTableCrc(), (int) tableCrc.getValue()));
        }
      } else {
        r.checkDataCrc(); // no chunk table: one full pass now, so nothing unchecked is trained on
      }
      if (expectedFingerprint != null && !expectedFingerprint.equals(header.fingerprint())) {
        throw new DataException(
            "token shard "
                + path
                + " was made with tokenizer "
                + header.fingerprint()
                + ", but this run's tokenizer is "
                + expectedFingerprint
                + "; run --mode prepare again with this tokenizer");
      }
      return r;
    } catch (IOException | RuntimeException e) {
      arena.close();
      throw e;
    }
  }

  public Path path() {
    return path;
  }

  public long tokenCount() {
    return header.tokens();
  }

  public long documentCount() {
    return header.documents();
  }

  /** Bytes per token: 2 (uint16) or 4 (uint32). */
  public int tokenWidth() {
    return header.width();
  }

  public int vocabSize() {
    return header.vocabSize();
  }

  public String fingerprint() {
    return header.fingerprint();
  }

  /** The storage type of the tokens. */
  public DType dtype() {
    return header.width() == 2 ? DType.U16 : DType.U32;
  }

  /** The shard format version: 2, or 1 for shards prepared before per-chunk checksums. */
  public int formatVersion() {
    return header.version();
  }

  /** Token {@code i}, verified (its chunk's checksum and id range) before it is returned. */
  public int token(long i) {
    if (i < 0 || i >= header.tokens()) {
      throw new IndexOutOfBoundsException("token " + i + " of " + header.tokens() + " in " + path);
    }
    ensureChecked(i, 1);
    return rawToken(i);
  }

  private int rawToken(long i) {
    long off = ShardFormat.HEADER_BYTES + i * header.width();
    return header.width() == 2 ? Short.toUnsignedInt(segment.get(U16, off)) : segment.get(U32, off);
  }

  /** Verifies every not yet verified chunk that tokens {@code [start, start+length)} touch. */
  private void ensureChecked(long start, long length) {
    if (length == 0) return;
    long first = start * header.width() / checkBytes;
    long last = ((start + length) * header.width() - 1) / checkBytes;
    for (long c = first; c <= last; c++) {
      int word = (int) (c >>> 6);
      long bit = 1L << (c & 63);
      if ((checked.get(word) & bit) != 0) continue;
      checkChunk(c);
      checked.getAndUpdate(word, w -> w | bit);
    }
  }

  /**
   * Checks chunk {@code c}: its CRC32C against the chunk table (version 2) and its ids against the
   * vocabulary size; throws naming the shard, chunk, byte offset and first bad token.
   */
  private void checkChunk(long c) {
    long from = c * checkBytes;
    long bytes = Math.min(checkBytes, header.tokens() * header.width() - from);
    long firstToken = from / header.width();
    long endToken = firstToken + bytes / header.width();
    String where =
        "chunk "
            + c
            + " (tokens "
            + firstToken
            + " to "
            + (endToken - 1)
            + ", "
            + bytes
            + " bytes)";
    String badId = firstBadId(firstToken, endToken);
    if (header.version() == ShardFormat.VERSION) {
      CRC32C crc = new CRC32C();
      crc.update(segment.asSlice(ShardFormat.HEADER_BYTES + from, bytes).asByteBuffer());
      int stored = segment.get(U32, header.chunkTableOffset() + 4 * c);
      if ((int) crc.getValue() != stored) {
        throw ShardFormat.bad(
            path,
            ShardFormat.HEADER_BYTES + from,
            String.format(
                "data checksum mismatch in %s: stored %08x, computed %08x%s; the file changed"
                    + " after prepare wrote it (disk or copy fault): run --mode verify-data, and"
                    + " --mode prepare again",
                where, stored, (int) crc.getValue(), badId == null ? "" : "; " + badId));
      }
    }
    if (badId != null)
      throw ShardFormat.bad(path, ShardFormat.HEADER_BYTES + from, where + ": " + badId);
  }

  /** "token i (byte b) is x, not below the vocabulary size v" for the first bad id, or null. */
  private String firstBadId(long from, long to) {
    int vocab = header.vocabSize();
    for (long i = from; i < to; i++) {
      int t = rawToken(i);
      if (t < 0 || t >= vocab) {
        return "token "
            + i
            + " (byte "
            + (ShardFormat.HEADER_BYTES + i * header.width())
            + ") is "
            + Integer.toUnsignedString(t)
            + ", not below the vocabulary size "
            + vocab;
      }
    }
    return null;
  }

  /** The whole data CRC (tokens, padding, index, chunk table). */
  private void checkDataCrc() {
    CRC32C crc = new CRC32C();
    long from = ShardFormat.HEADER_BYTES;
    long end = header.fileSize();
    while (from < end) {
      long n = Math.min(1 << 24, end - from);
      crc.update(segment.asSlice(from, n).asByteBuffer());
      from += n;
    }
    if ((int) crc.getValue() != header.dataCrc()) {
      throw ShardFormat.bad(
          path,
          ShardFormat.HEADER_BYTES,
          String.format(
              "data checksum mismatch: stored %08x, computed %08x%s",
              header.dataCrc(),
              (int) crc.getValue(),
              header.version() == ShardFormat.VERSION_1
                  ? " (a version 1 shard, checked whole at open; the file changed after prepare"
                      + " wrote it: run --mode prepare again)"
                  : ""));
    }
  }

  /** The first token of document {@code d}; {@code documentStart(documentCount())} is N. */
  public long documentStart(long d) {
    return segment.get(I64, header.indexOffset() + 8 * d);
  }

  /** Tokens {@code [start, start+length)} as a 1-D U16/U32 tensor over the mapping: no copy. */
  public Tensor tokens(long start, long length) {
    if (start < 0 || length < 0 || start + length > header.tokens()) {
      throw new IndexOutOfBoundsException(
          "tokens [" + start + ", " + (start + length) + ") of " + header.tokens() + " in " + path);
    }
    ensureChecked(start, length);
    return Torch.fromAddress(
        segment.address() + ShardFormat.HEADER_BYTES + start * header.width(), dtype(), length);
  }

  /**
   * Checks everything: each chunk's CRC (version 2), the whole data CRC, that the index increases,
   * that every token is below the vocabulary size, and (when {@code bos}/{@code eos} are not
   * negative) that every document starts with BOS and ends with EOS. Throws {@link DataException}
   * naming the first problem.
   */
  public void verify(int bos, int eos) {
    for (long c = 0; c < header.chunkCount(); c++) checkChunk(c); // the precise place first
    checkDataCrc();
    long prev = 0;
    for (long d = 1; d <= header.documents(); d++) {
      long s = documentStart(d);
      if (s <= prev) {
        throw ShardFormat.bad(
            path,
            header.indexOffset() + 8 * d,
            "document " + d + " starts at " + s + ", not after " + prev);
      }
      prev = s;
    }
    for (long i = 0; i < header.tokens(); i++) {
      int t = rawToken(i);
      if (t < 0 || t >= header.vocabSize()) {
        throw ShardFormat.bad(
            path,
            ShardFormat.HEADER_BYTES + i * header.width(),
            "token "
                + i
                + " is "
                + Integer.toUnsignedString(t)
                + ", vocabulary size "
                + vocabSize());
      }
    }
    if (bos >= 0 || eos >= 0) {
      for (long d = 0; d < header.documents(); d++) {
        long s = documentStart(d);
        long e = documentStart(d + 1);
        if ((bos >= 0 && rawToken(s) != bos) || (eos >= 0 && rawToken(e - 1) != eos)) {
          throw ShardFormat.bad(
              path,
              ShardFormat.HEADER_BYTES + s * header.width(),
              "document " + d + " does not start with BOS " + bos + " and end with EOS " + eos);
        }
        if (bos >= 0 && e - s > 1 && rawToken(s + 1) == bos) {
          throw ShardFormat.bad(
              path,
              ShardFormat.HEADER_BYTES + (s + 1) * header.width(),
              "document " + d + " starts with two BOS tokens");
        }
      }
    }
  }

  @Override
  public void close() {
    arena.close();
  }

  @Override
  public String toString() {
    return "ShardReader(" + path + ", " + header.tokens() + " tokens)";
  }
}
