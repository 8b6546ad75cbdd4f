package dev.hanlin.data;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.zip.CRC32C;

/**
 * The token shard file, little-endian throughout:
 *
 * <pre>
 * offset  size  field
 *      0     8  magic "HANLINTK"
 *      8     4  version (1)
 *     12     4  bytes per token: 2 (uint16) or 4 (uint32)
 *     16     8  token count N
 *     24     8  document count D
 *     32     4  vocabulary size (every token is below it)
 *     36     4  CRC32C of the document index (checked on open)
 *     40     8  offset of the tokens (256)
 *     48     8  offset of the document index (8-aligned)
 *     56     8  file size
 *     64     4  CRC32C of every byte from 256 to the end (tokens, padding, index)
 *     68     4  CRC32C of these 256 header bytes with this field as 0
 *     72    64  tokenizer fingerprint, ASCII, zero-padded
 *    136   120  reserved, 0
 *    256   N*w  tokens
 *          pad  zeros to a multiple of 8
 *        8(D+1) document index: the start token of each document, then N
 * </pre>
 *
 * Opening checks the header CRC, the sizes and the index CRC (cheap: the index is 8 bytes a
 * document, a few percent of the file); {@link ShardReader#verify} checks the data CRC and every
 * index entry and token.
 */
final class ShardFormat {
  private ShardFormat() {}

  static final byte[] MAGIC = "HANLINTK".getBytes(StandardCharsets.US_ASCII);
  static final int VERSION = 1;
  static final int HEADER_BYTES = 256;
  static final int FINGERPRINT_BYTES = 64;

  /** File name extension of a shard. */
  static final String EXTENSION = ".tok";

  static long indexOffset(long tokens, int width) {
    return align8(HEADER_BYTES + tokens * width);
  }

  static long fileSize(long tokens, long documents, int width) {
    return indexOffset(tokens, width) + 8 * (documents + 1);
  }

  static long align8(long x) {
    return (x + 7) & ~7L;
  }

  /** The bytes per token for a vocabulary: uint16 when every id fits, else uint32. */
  static int widthFor(int vocabSize) {
    return vocabSize <= 65536 ? 2 : 4;
  }

  static String dtypeName(int width) {
    return width == 2 ? "uint16" : "uint32";
  }

  /** The header fields, as written and as read. */
  record Header(
      int width,
      long tokens,
      long documents,
      int vocabSize,
      long indexOffset,
      long fileSize,
      int dataCrc,
      int indexCrc,
      String fingerprint) {

    byte[] encode() {
      ByteBuffer b = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
      b.put(MAGIC).putInt(VERSION).putInt(width).putLong(tokens).putLong(documents);
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
      if (version != VERSION) {
        throw bad(path, 8, "version " + version + ", this build reads version " + VERSION);
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
      if (tokens < 0 || documents < 0 || tokens > (Long.MAX_VALUE - HEADER_BYTES) / 8) {
        throw bad(path, 16, "token count " + tokens + ", document count " + documents);
      }
      if (tokensOffset != HEADER_BYTES) throw bad(path, 40, "tokens start at " + tokensOffset);
      if (indexOffset != ShardFormat.indexOffset(tokens, width)) {
        throw bad(
            path,
            48,
            "index offset " + indexOffset + ", expected " + ShardFormat.indexOffset(tokens, width));
      }
      long expected = ShardFormat.fileSize(tokens, documents, width);
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
          width, tokens, documents, vocab, indexOffset, fileSize, dataCrc, indexCrc, fp);
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
