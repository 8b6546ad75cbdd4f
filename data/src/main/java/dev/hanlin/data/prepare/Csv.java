package dev.hanlin.data.prepare;

import java.io.IOException;
import java.io.Reader;
import java.util.ArrayList;
import java.util.List;

/**
 * An RFC 4180 CSV record reader: comma-separated fields, double quotes around fields that hold
 * commas, quotes ({@code ""}) or line breaks. Tracks the line each record starts on, for error
 * messages.
 */
final class Csv {
  private final Reader in;
  private final char[] buf = new char[1 << 16];
  private int pos;
  private int len;
  private long line = 1;
  private long recordLine;
  private boolean eof;

  /** A syntax error that leaves no safe place to resume. */
  static final class MalformedCsv extends IOException {
    MalformedCsv(String message) {
      super(message);
    }
  }

  Csv(Reader in) {
    this.in = in;
  }

  /** The line on which the last record returned by {@link #next()} started (1-based). */
  long recordLine() {
    return recordLine;
  }

  private int peek() throws IOException {
    if (pos == len) {
      if (eof) return -1;
      len = in.read(buf, 0, buf.length);
      pos = 0;
      if (len <= 0) {
        len = 0;
        eof = true;
        return -1;
      }
    }
    return buf[pos];
  }

  private int take() throws IOException {
    int c = peek();
    if (c >= 0) {
      pos++;
      if (c == '\n') line++;
    }
    return c;
  }

  /** The next record's fields, or null at the end of input. */
  List<String> next() throws IOException {
    if (peek() < 0) return null;
    recordLine = line;
    List<String> fields = new ArrayList<>();
    StringBuilder f = new StringBuilder();
    boolean quoted = false;
    boolean wasQuoted = false;
    while (true) {
      int c = take();
      if (quoted) {
        if (c < 0) {
          throw new MalformedCsv("unterminated quoted field starting on line " + recordLine);
        }
        if (c == '"') {
          if (peek() == '"') {
            take();
            f.append('"');
          } else {
            quoted = false;
          }
        } else {
          f.append((char) c);
        }
      } else if (c == '"' && f.isEmpty() && !wasQuoted) {
        quoted = true;
        wasQuoted = true;
      } else if (c == ',') {
        fields.add(f.toString());
        f.setLength(0);
        wasQuoted = false;
      } else if (c == '\n' || c == '\r' || c < 0) {
        if (c == '\r' && peek() == '\n') take();
        fields.add(f.toString());
        return fields;
      } else {
        f.append((char) c);
      }
    }
  }
}
