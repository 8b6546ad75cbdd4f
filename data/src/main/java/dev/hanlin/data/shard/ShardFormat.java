package dev.hanlin.data.shard;

import dev.hanlin.data.DataException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.zip.CRC32C;

/**
 * The token shard file, little-endian throughout (version 2):
 *
 * <pre>
 * offset  size  field
 *      0     8  magic "HANLINTK"
 *      8     4  version (2; version 1 is still read)
 *     12     4  bytes per token: 2 (uint16) or 4 (uint32)
 *     16     8  token count N
 *     24     8  document count D
 *     32     4  vocabulary size (every token is below it)
 *     36     4  CRC32C of the document index (checked on open)
 *     40     8  offset of the tokens (256)
 *     48     8  offset of the document index (8-aligned)
 *     56     8  file size
 *     64     4  CRC32C of every byte from 256 to the end (tokens, padding, index, chunk table)
 *     68     4  CRC32C of these 256 header bytes with this field as 0
 *     72    64  tokenizer fingerprint, ASCII, zero-padded
 *    136     4  chunk size in bytes B (a multiple of 4; version 2 only)
 *    140     4  CRC32C of the chunk table (checked on open; version 2 only)
 *    144     8  offset of the chunk table (version 2 only)
 *    152   104  reserved, 0
 *    256   N*w  tokens
 *          pad  zeros to a multiple of 8
 *        8(D+1) document index: the start token of each document, then N
 *        4*C    chunk table (version 2): CRC32C of each B-byte chunk of the tokens, the last one
 *               shorter; C = ceil(N*w / B)
 * </pre>
 *
 * Opening checks the header CRC, the sizes, the index CRC and the chunk table CRC (cheap: the index
 * is 8 bytes a document and the table 4 bytes per 64 KiB). {@link ShardReader} checks each chunk's
 * CRC and token range the first time the chunk is read, so training never uses a token that was not
 * verified and never pays a whole pass over the corpus up front. Version 1 has no chunk table: its
 * whole data CRC is checked once at open instead. {@link ShardReader#verify} checks everything.
 * Every check throws {@link DataException} on malformed input, naming the file and byte offset.
 */
public final class ShardFormat {
  private ShardFormat() {}

  static final byte[] MAGIC = "HANLINTK".getBytes(StandardCharsets.US_ASCII);
  static final int VERSION = 2;

  /** The first version, without the chunk table; still read. */
  static final int VERSION_1 = 1;

  /** Bytes per checksummed chunk in the shards this build writes: 64 KiB. */
  static final int CHUNK_BYTES = 1 << 16;

  static final int HEADER_BYTES = 256;
  static final int FINGERPRINT_BYTES = 64;

  /** File name extension of a shard. */
  public static final String EXTENSION = ".tok";

  static long indexOffset(long tokens, int width) {
    return align8(HEADER_BYTES + tokens * width);
  }

  /** The size of a version 2 shard. */
  static long fileSize(long tokens, long documents, int width, int chunkBytes) {
    return chunkTableOffset(tokens, documents, width) + 4 * chunks(tokens * width, chunkBytes);
  }

  static long chunkTableOffset(long tokens, long documents, int width) {
    return indexOffset(tokens, width) + 8 * (documents + 1);
  }

  /** The number of {@code chunkBytes}-byte chunks that cover {@code bytes} bytes of tokens. */
  static long chunks(long bytes, int chunkBytes) {
    return (bytes + chunkBytes - 1) / chunkBytes;
  }

  static long align8(long x) {
    return (x + 7) & ~7L;
  }

  /** The bytes per token for a vocabulary: uint16 when every id fits, else uint32. */
  public static int widthFor(int vocabSize) {
    return vocabSize <= 65536 ? 2 : 4;
  }

  public static String dtypeName(int width) {
    return width == 2 ? "uint16" : "uint32";
  }

  /**
   * The header fields, as written and as read. {@code chunkBytes} is 0 for version 1 (no chunk
   * table), when {@code chunkTableOffset} is the file size and {@code chunkTableCrc} 0.
   */
  public record Header(
      int version,
      int width,
      long tokens,
      long documents,
      int vocabSize,
      long indexOffset,
      long fileSize,
      int dataCrc,
      int indexCrc,
      String fingerprint,
      int chunkBytes,
      int chunkTableCrc,
      long chunkTableOffset) {

    /** The number of checksummed chunks (0 for version 1). */
    long chunkCount() {
      return chunkBytes == 0 ? 0 : chunks(tokens * width, chunkBytes);
    }

    byte[] encode() {
      if (version != VERSION) throw new IllegalStateException("writes version " + VERSION);
      ByteBuffer b = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
      b.put(MAGIC).putInt(version).putInt(width).putLong(tokens).putLong(documents);
      b.putInt(vocabSize)
          .putInt(indexCrc)
          .putLong(HEADER_BYTES)
          .putLong(indexOffset)
          .putLong(fileSize);
      b.putInt(dataCrc).putInt(0);
      byte[] fp = fingerprint.getBytes(StandardCharsets.US_ASCII);
      if (fp.length > FINGERPRINT_BYTES) {
        throw new IllegalArgumentException(
            "tokenizer fingerprint longer than " + FINGERPRINT_BYTES + " bytes: " + fingerprint);
      }
      b.put(fp);
      b.position(136);
      b.putInt(chunkBytes).putInt(chunkTableCrc).putLong(chunkTableOffset);
      byte[] out = b.array();
      ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putInt(68, crc(out, 0, HEADER_BYTES));
      return out;
    }

    /** Parses and checks a header; {@code fileSize} is the real size of the file. */
    static Header decode(Path path, ByteBuffer raw, long actualFileSize) {
      if (actualFileSize < HEADER_BYTES) {
        throw bad(
            path, 0, "file is " + actualFileSize + " bytes, shorter than the 256-byte header");
      }
      byte[] h = new byte[HEADER_BYTES];
      raw.get(0, h);
      for (int i = 0; i < MAGIC.length; i++) {
        if (h[i] != MAGIC[i]) {
          throw bad(path, 0, "not a Hanlin token shard (magic is not HANLINTK)");
        }
      }
      ByteBuffer b = ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN);
      int version = b.getInt(8);
      if (version != VERSION && version != VERSION_1) {
        throw bad(
            path,
            8,
            "version " + version + ", this build reads versions " + VERSION_1 + " and " + VERSION);
      }
      int storedHeaderCrc = b.getInt(68);
      b.putInt(68, 0);
      int headerCrc = crc(h, 0, HEADER_BYTES);
      if (headerCrc != storedHeaderCrc) {
        throw bad(
            path,
            68,
            String.format(
                "header checksum mismatch: stored %08x, computed %08x",
                storedHeaderCrc, headerCrc));
      }
      int width = b.getInt(12);
      long tokens = b.getLong(16);
      long documents = b.getLong(24);
      int vocab = b.getInt(32);
      long tokensOffset = b.getLong(40);
      long indexOffset = b.getLong(48);
      long fileSize = b.getLong(56);
      int dataCrc = b.getInt(64);
      int indexCrc = b.getInt(36);
      if (width != 2 && width != 4) throw bad(path, 12, "bytes per token is " + width);
      if (tokens < 0
          || documents < 0
          || tokens > (Long.MAX_VALUE - HEADER_BYTES) / 8
          || documents > (Long.MAX_VALUE - HEADER_BYTES) / 16) {
        throw bad(path, 16, "token count " + tokens + ", document count " + documents);
      }
      if (tokensOffset != HEADER_BYTES) throw bad(path, 40, "tokens start at " + tokensOffset);
      if (indexOffset != ShardFormat.indexOffset(tokens, width)) {
        throw bad(
            path,
            48,
            "index offset " + indexOffset + ", expected " + ShardFormat.indexOffset(tokens, width));
      }
      int chunkBytes = 0;
      int chunkTableCrc = 0;
      long tableOffset = ShardFormat.chunkTableOffset(tokens, documents, width);
      long expected = tableOffset;
      if (version == VERSION) {
        chunkBytes = b.getInt(136);
        chunkTableCrc = b.getInt(140);
        if (chunkBytes <= 0 || chunkBytes % 4 != 0) {
          throw bad(path, 136, "chunk size " + chunkBytes + " is not a positive multiple of 4");
        }
        if (b.getLong(144) != tableOffset) {
          throw bad(
              path, 144, "chunk table offset " + b.getLong(144) + ", expected " + tableOffset);
        }
        expected = ShardFormat.fileSize(tokens, documents, width, chunkBytes);
      }
      if (fileSize != expected || actualFileSize != expected) {
        throw bad(
            path,
            56,
            "file is "
                + actualFileSize
                + " bytes, header says "
                + fileSize
                + ", counts imply "
                + expected
                + " (truncated or appended to?)");
      }
      int end = 72;
      while (end < 72 + FINGERPRINT_BYTES && h[end] != 0) end++;
      String fp = new String(h, 72, end - 72, StandardCharsets.US_ASCII);
      return new Header(
          version,
          width,
          tokens,
          documents,
          vocab,
          indexOffset,
          fileSize,
          dataCrc,
          indexCrc,
          fp,
          chunkBytes,
          chunkTableCrc,
          tableOffset);
    }
  }

  static int crc(byte[] b, int off, int len) {
    CRC32C c = new CRC32C();
    c.update(b, off, len);
    return (int) c.getValue();
  }

  static DataException bad(Path path, long offset, String what) {
    return new DataException("corrupt token shard " + path + " at byte " + offset + ": " + what);
  }
}
