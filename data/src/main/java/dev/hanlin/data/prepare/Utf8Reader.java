package dev.hanlin.data.prepare;

import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Decodes UTF-8, replacing every malformed sequence with U+FFFD and counting it, so that invalid
 * input is neither fatal nor silent; the first one's line and byte offset are kept for the report.
 * A leading byte-order mark is dropped.
 */
final class Utf8Reader extends Reader {
  private final InputStream in;
  private final CharsetDecoder dec =
      StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT);
  private final ByteBuffer bb = ByteBuffer.allocate(1 << 16);
  private final CharBuffer cb = CharBuffer.allocate(1 << 16);
  private boolean eof;
  private boolean flushed;
  private boolean pendingReplacement;
  private boolean first = true;
  private long invalid;
  private long base; // bytes of the input before bb's first byte
  private long lines; // newlines decoded in the fills before the current one
  private long firstInvalidLine;
  private long firstInvalidByte = -1;

  Utf8Reader(InputStream in) {
    this.in = in;
    bb.flip();
    cb.flip();
  }

  /** Malformed UTF-8 sequences replaced so far. */
  long invalidSequences() {
    return invalid;
  }

  /** The 1-based line of the first malformed sequence (lines end at \n), or 0 if none. */
  long firstInvalidLine() {
    return firstInvalidLine;
  }

  /** The byte offset in the (decompressed) input of the first malformed sequence, or -1. */
  long firstInvalidByte() {
    return firstInvalidByte;
  }

  @Override
  public int read(char[] dst, int off, int len) throws IOException {
    if (len == 0) return 0;
    while (!cb.hasRemaining()) {
      if (!fill()) return -1;
    }
    if (first) {
      first = false;
      if (cb.get(cb.position()) == '\uFEFF') {
        cb.get();
        if (!cb.hasRemaining()) return read(dst, off, len);
      }
    }
    int n = Math.min(len, cb.remaining());
    cb.get(dst, off, n);
    return n;
  }

  private boolean fill() throws IOException {
    if (flushed) return false;
    cb.clear();
    if (pendingReplacement) {
      cb.put('\uFFFD');
      pendingReplacement = false;
    }
    while (cb.hasRemaining()) {
      if (!eof && bb.remaining() < 8) readMore();
      CoderResult r = dec.decode(bb, cb, eof);
      if (r.isError()) {
        if (invalid == 0) {
          firstInvalidByte = base + bb.position();
          firstInvalidLine = lines + newlines(cb.array(), 0, cb.position()) + 1;
        }
        invalid++;
        bb.position(bb.position() + r.length());
        if (cb.hasRemaining()) {
          cb.put('\uFFFD');
        } else {
          pendingReplacement = true;
          break;
        }
      } else if (r.isOverflow()) {
        break;
      } else if (eof) {
        dec.flush(cb);
        flushed = true;
        break;
      } else if (cb.position() > 0 && bb.remaining() == 0) {
        break;
      }
    }
    cb.flip();
    lines += newlines(cb.array(), 0, cb.limit());
    return cb.hasRemaining();
  }

  private static long newlines(char[] a, int from, int to) {
    long n = 0;
    for (int i = from; i < to; i++) if (a[i] == '\n') n++;
    return n;
  }

  private void readMore() throws IOException {
    base += bb.position();
    bb.compact();
    int r = in.read(bb.array(), bb.position(), bb.remaining());
    if (r < 0) eof = true;
    else bb.position(bb.position() + r);
    bb.flip();
  }

  @Override
  public void close() throws IOException {
    in.close();
  }
}
