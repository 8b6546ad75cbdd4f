package dev.hanlin.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The few protobuf wire-format pieces that {@code sentencepiece_model.proto} needs, by hand: a
 * message is read as a list of fields (number, wire type, raw value) so that fields Hanlin does not
 * interpret survive a read-modify-write untouched. {@link #parse} throws {@link
 * TokenizerFormatException} on malformed input (and nothing else), naming the byte offset in the
 * file: a field records where its payload was, so nested messages report file offsets too.
 */
final class Protobuf {
  static final int VARINT = 0;
  static final int FIXED64 = 1;
  static final int LEN = 2;
  static final int FIXED32 = 5;

  private Protobuf() {}

  /**
   * One field as it appeared on the wire; {@code bytes} holds LEN payloads, {@code bits} the rest;
   * {@code offset} is where it was in the file read (a LEN field's payload, a varint's tag; -1 for
   * a field built in memory).
   */
  record Field(int number, int wireType, long bits, byte[] bytes, long offset) {
    Field(int number, int wireType, long bits, byte[] bytes) {
      this(number, wireType, bits, bytes, -1);
    }

    int asInt() {
      return (int) bits;
    }

    boolean asBool() {
      return bits != 0;
    }

    float asFloat() {
      return Float.intBitsToFloat((int) bits);
    }

    String asString() {
      return new String(bytes, StandardCharsets.UTF_8);
    }

    static Field varint(int number, long value) {
      return new Field(number, VARINT, value, null);
    }

    static Field fixed32(int number, float value) {
      return new Field(number, FIXED32, Float.floatToRawIntBits(value) & 0xffffffffL, null);
    }

    static Field bytes(int number, byte[] value) {
      return new Field(number, LEN, 0, value);
    }

    static Field string(int number, String value) {
      return bytes(number, value.getBytes(StandardCharsets.UTF_8));
    }
  }

  /** Parses one message; {@code what} names it in errors (file and message path). */
  static List<Field> parse(byte[] buf, int from, int to, String what)
      throws TokenizerFormatException {
    return parse(buf, from, to, what, 0);
  }

  /**
   * Parses the payload of {@code f}, a LEN field read by {@link #parse}, reporting file offsets.
   */
  static List<Field> parseNested(Field f, String what) throws TokenizerFormatException {
    return parse(f.bytes(), 0, f.bytes().length, what, Math.max(0, f.offset()));
  }

  /** {@code base} is the file offset of {@code buf[0]}, added to every offset reported. */
  private static List<Field> parse(byte[] buf, int from, int to, String what, long base)
      throws TokenizerFormatException {
    List<Field> fields = new ArrayList<>();
    int[] pos = {from};
    while (pos[0] < to) {
      int at = pos[0];
      long tag = readVarint(buf, pos, to, what, base);
      long number = tag >>> 3;
      int wire = (int) (tag & 7);
      if (number <= 0 || number > 536_870_911) { // protobuf's largest field number, 2^29 - 1
        throw TokenizerFormatException.at(what, base + at, "bad field number " + number);
      }
      int n = (int) number;
      switch (wire) {
        case VARINT ->
            fields.add(new Field(n, wire, readVarint(buf, pos, to, what, base), null, base + at));
        case FIXED64 -> {
          need(buf, pos[0], 8, to, what, base);
          long v = 0;
          for (int i = 7; i >= 0; i--) v = (v << 8) | (buf[pos[0] + i] & 0xff);
          fields.add(new Field(n, wire, v, null, base + pos[0]));
          pos[0] += 8;
        }
        case LEN -> {
          long len = readVarint(buf, pos, to, what, base);
          if (len < 0 || len > to - pos[0]) {
            throw TokenizerFormatException.at(
                what,
                base + at,
                "field "
                    + n
                    + " claims "
                    + Long.toUnsignedString(len)
                    + " bytes, only "
                    + (to - pos[0])
                    + " left");
          }
          byte[] b = new byte[(int) len];
          System.arraycopy(buf, pos[0], b, 0, (int) len);
          fields.add(new Field(n, wire, 0, b, base + pos[0]));
          pos[0] += (int) len;
        }
        case FIXED32 -> {
          need(buf, pos[0], 4, to, what, base);
          long v =
              (buf[pos[0]] & 0xffL)
                  | (buf[pos[0] + 1] & 0xffL) << 8
                  | (buf[pos[0] + 2] & 0xffL) << 16
                  | (buf[pos[0] + 3] & 0xffL) << 24;
          fields.add(new Field(n, wire, v, null, base + pos[0]));
          pos[0] += 4;
        }
        default ->
            throw TokenizerFormatException.at(
                what, base + at, "unsupported wire type " + wire + " (field " + n + ")");
      }
    }
    return fields;
  }

  static byte[] write(List<Field> fields) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (Field f : fields) {
      writeVarint(out, ((long) f.number() << 3) | f.wireType());
      switch (f.wireType()) {
        case VARINT -> writeVarint(out, f.bits());
        case FIXED64 -> {
          for (int i = 0; i < 8; i++) out.write((int) (f.bits() >>> (8 * i)));
        }
        case LEN -> {
          writeVarint(out, f.bytes().length);
          out.writeBytes(f.bytes());
        }
        case FIXED32 -> {
          for (int i = 0; i < 4; i++) out.write((int) (f.bits() >>> (8 * i)));
        }
        default -> throw new IllegalStateException("wire type " + f.wireType());
      }
    }
    return out.toByteArray();
  }

  private static void need(byte[] buf, int pos, int n, int to, String what, long base)
      throws TokenizerFormatException {
    if (pos + n > to) {
      throw TokenizerFormatException.at(
          what, base + pos, "a value of " + n + " bytes runs past the end of its message");
    }
  }

  private static long readVarint(byte[] buf, int[] pos, int to, String what, long base)
      throws TokenizerFormatException {
    long v = 0;
    int start = pos[0];
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos[0] >= to)
        throw TokenizerFormatException.at(what, base + start, "varint runs past the end");
      int b = buf[pos[0]++] & 0xff;
      v |= (long) (b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    throw TokenizerFormatException.at(what, base + start, "varint longer than 10 bytes");
  }

  private static void writeVarint(ByteArrayOutputStream out, long v) {
    while ((v & ~0x7fL) != 0) {
      out.write((int) ((v & 0x7f) | 0x80));
      v >>>= 7;
    }
    out.write((int) v);
  }
}
