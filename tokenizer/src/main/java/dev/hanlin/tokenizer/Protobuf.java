package dev.hanlin.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The few protobuf wire-format pieces that {@code sentencepiece_model.proto} needs, by hand: a
 * message is read as a list of fields (number, wire type, raw value) so that fields Hanlin does not
 * interpret survive a read-modify-write untouched.
 */
final class Protobuf {
  static final int VARINT = 0;
  static final int FIXED64 = 1;
  static final int LEN = 2;
  static final int FIXED32 = 5;

  private Protobuf() {}

  /**
   * One field as it appeared on the wire; {@code bytes} holds LEN payloads, {@code bits} the rest.
   */
  record Field(int number, int wireType, long bits, byte[] bytes) {
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
  static List<Field> parse(byte[] buf, int from, int to, String what) {
    List<Field> fields = new ArrayList<>();
    int[] pos = {from};
    while (pos[0] < to) {
      int at = pos[0];
      long tag = readVarint(buf, pos, to, what);
      int number = (int) (tag >>> 3);
      int wire = (int) (tag & 7);
      if (number <= 0) throw new IllegalArgumentException(what + ": bad field tag at offset " + at);
      switch (wire) {
        case VARINT -> fields.add(new Field(number, wire, readVarint(buf, pos, to, what), null));
        case FIXED64 -> {
          need(buf, pos[0], 8, to, what);
          long v = 0;
          for (int i = 7; i >= 0; i--) v = (v << 8) | (buf[pos[0] + i] & 0xff);
          pos[0] += 8;
          fields.add(new Field(number, wire, v, null));
        }
        case LEN -> {
          long len = readVarint(buf, pos, to, what);
          if (len < 0 || len > to - pos[0]) {
            throw new IllegalArgumentException(
                what
                    + ": field "
                    + number
                    + " at offset "
                    + at
                    + " claims "
                    + len
                    + " bytes, only "
                    + (to - pos[0])
                    + " left");
          }
          byte[] b = new byte[(int) len];
          System.arraycopy(buf, pos[0], b, 0, (int) len);
          pos[0] += (int) len;
          fields.add(new Field(number, wire, 0, b));
        }
        case FIXED32 -> {
          need(buf, pos[0], 4, to, what);
          long v =
              (buf[pos[0]] & 0xffL)
                  | (buf[pos[0] + 1] & 0xffL) << 8
                  | (buf[pos[0] + 2] & 0xffL) << 16
                  | (buf[pos[0] + 3] & 0xffL) << 24;
          pos[0] += 4;
          fields.add(new Field(number, wire, v, null));
        }
        default ->
            throw new IllegalArgumentException(
                what + ": unsupported wire type " + wire + " at offset " + at);
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

  private static void need(byte[] buf, int pos, int n, int to, String what) {
    if (pos + n > to) {
      throw new IllegalArgumentException(what + ": read past end at offset " + pos);
    }
  }

  private static long readVarint(byte[] buf, int[] pos, int to, String what) {
    long v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos[0] >= to)
        throw new IllegalArgumentException(what + ": truncated varint at " + pos[0]);
      int b = buf[pos[0]++] & 0xff;
      v |= (long) (b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    throw new IllegalArgumentException(what + ": varint longer than 10 bytes at " + pos[0]);
  }

  private static void writeVarint(ByteArrayOutputStream out, long v) {
    while ((v & ~0x7fL) != 0) {
      out.write((int) ((v & 0x7f) | 0x80));
      v >>>= 7;
    }
    out.write((int) v);
  }
}
