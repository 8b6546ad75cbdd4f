package dev.hanlin.data.shard;

import dev.hanlin.torch.io.AtomicFiles;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.zip.CRC32C;

/**
 * Writes one token shard ({@link ShardFormat}, version 2): documents are appended to a temporary
 * file while the CRC32C of each chunk of token bytes is computed; {@link #finish} writes the index,
 * the chunk table and the header, fsyncs and renames, so the shard either exists complete or not at
 * all.
 */
public final class ShardWriter implements AutoCloseable {
  private final Path target;
  private final Path tmp;
  private final FileChannel ch;
  private final int width;
  private final int vocabSize;
  private final String fingerprint;
  private final ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
  private final CRC32C crc = new CRC32C();
  private final int chunkBytes;
  private final CRC32C chunkCrc = new CRC32C();
  private int chunkFill; // token bytes in the current chunk
  private int[] chunkCrcs = new int[64];
  private int chunks;
  private long tokens;
  private long[] starts = new long[1024];
  private int documents;
  private boolean done;

  public ShardWriter(Path target, int width, int vocabSize, String fingerprint) throws IOException {
    this(target, width, vocabSize, fingerprint, ShardFormat.CHUNK_BYTES);
  }

  /** With a chosen chunk size (a multiple of 4), so that tests can make many small chunks. */
  ShardWriter(Path target, int width, int vocabSize, String fingerprint, int chunkBytes)
      throws IOException {
    if (chunkBytes <= 0 || chunkBytes % 4 != 0) {
      throw new IllegalArgumentException("chunk size " + chunkBytes + " is not a multiple of 4");
    }
    this.chunkBytes = chunkBytes;
    this.target = target;
    this.tmp = AtomicFiles.temp(target);
    this.width = width;
    this.vocabSize = vocabSize;
    this.fingerprint = fingerprint;
    Files.createDirectories(target.toAbsolutePath().getParent());
    this.ch =
        FileChannel.open(
            tmp,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE);
    ch.position(ShardFormat.HEADER_BYTES);
  }

  public long tokens() {
    return tokens;
  }

  public int documents() {
    return documents;
  }

  /** Appends one document's tokens (already with BOS and EOS). */
  public void add(int[] doc) throws IOException {
    if (documents + 1 >= starts.length) starts = Arrays.copyOf(starts, starts.length * 2);
    starts[documents++] = tokens;
    for (int id : doc) {
      if (id < 0 || id >= vocabSize) {
        throw new IllegalArgumentException("token id " + id + " outside vocabulary " + vocabSize);
      }
      if (buf.remaining() < 4) flushTokens();
      if (width == 2) buf.putShort((short) id);
      else buf.putInt(id);
    }
    tokens += doc.length;
  }

  /** Flushes a buffer of token bytes, adding them to the chunk CRCs. */
  private void flushTokens() throws IOException {
    ByteBuffer b = buf.duplicate().flip();
    while (b.hasRemaining()) {
      int take = Math.min(b.remaining(), chunkBytes - chunkFill);
      chunkCrc.update(b.slice(b.position(), take));
      b.position(b.position() + take);
      chunkFill += take;
      if (chunkFill == chunkBytes) endChunk();
    }
    flush();
  }

  private void endChunk() {
    if (chunks == chunkCrcs.length) chunkCrcs = Arrays.copyOf(chunkCrcs, chunks * 2);
    chunkCrcs[chunks++] = (int) chunkCrc.getValue();
    chunkCrc.reset();
    chunkFill = 0;
  }

  private void flush() throws IOException {
    buf.flip();
    crc.update(buf.duplicate());
    while (buf.hasRemaining()) ch.write(buf);
    buf.clear();
  }

  /** Completes the shard: index, header, fsync, rename. Returns its header. */
  public ShardFormat.Header finish() throws IOException {
    flushTokens();
    if (chunkFill > 0) endChunk();
    long pad = ShardFormat.indexOffset(tokens, width) - (ShardFormat.HEADER_BYTES + tokens * width);
    for (long i = 0; i < pad; i++) {
      if (!buf.hasRemaining()) flush();
      buf.put((byte) 0);
    }
    starts[documents] = tokens;
    CRC32C indexCrc = new CRC32C();
    ByteBuffer entry = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i <= documents; i++) {
      if (buf.remaining() < 8) flush();
      buf.putLong(starts[i]);
      indexCrc.update(entry.putLong(0, starts[i]).array(), 0, 8);
    }
    CRC32C tableCrc = new CRC32C();
    for (int i = 0; i < chunks; i++) {
      if (buf.remaining() < 4) flush();
      buf.putInt(chunkCrcs[i]);
      tableCrc.update(entry.putInt(0, chunkCrcs[i]).array(), 0, 4);
    }
    flush();
    long size = ShardFormat.fileSize(tokens, documents, width, chunkBytes);
    var header =
        new ShardFormat.Header(
            ShardFormat.VERSION,
            width,
            tokens,
            documents,
            vocabSize,
            ShardFormat.indexOffset(tokens, width),
            size,
            (int) crc.getValue(),
            (int) indexCrc.getValue(),
            fingerprint,
            chunkBytes,
            (int) tableCrc.getValue(),
            ShardFormat.chunkTableOffset(tokens, documents, width));
    ByteBuffer hb = ByteBuffer.wrap(header.encode());
    long pos = 0;
    while (hb.hasRemaining()) pos += ch.write(hb, pos);
    ch.force(true);
    ch.close();
    AtomicFiles.commit(tmp, target);
    done = true;
    return header;
  }

  /** Drops an unfinished shard (its temporary file). */
  @Override
  public void close() throws IOException {
    if (!done) {
      ch.close();
      Files.deleteIfExists(tmp);
      done = true;
    }
  }
}
