package dev.hanlin.train.metrics;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads TensorBoard event files back for the tests, independently of the writer: checks both CRCs
 * of every record and decodes the Event fields Hanlin writes, rejecting anything else.
 */
final class EventFileReader {

  /** A decoded Event; absent fields are 0 / null / empty. */
  record Event(
      double wallTime,
      long step,
      String fileVersion,
      Map<String, Float> values,
      int sessionStatus) {}

  private EventFileReader() {}

  static List<Event> read(Path file) throws IOException {
    List<Event> events = new ArrayList<>();
    for (byte[] data : records(Files.readAllBytes(file), file.toString())) events.add(event(data));
    return events;
  }

  /** The payloads of the TFRecords in {@code bytes}, CRCs checked. */
  static List<byte[]> records(byte[] bytes, String where) {
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    List<byte[]> out = new ArrayList<>();
    while (b.hasRemaining()) {
      int at = b.position();
      if (b.remaining() < 12) throw new IllegalStateException(where + "@" + at + ": torn header");
      long length = b.getLong();
      int lengthCrc = b.getInt();
      int expected = EventFile.maskedCrc32c(bytes, at, 8);
      if (lengthCrc != expected)
        throw new IllegalStateException(
            String.format("%s@%d: length crc %08x, expected %08x", where, at, lengthCrc, expected));
      if (b.remaining() < length + 4)
        throw new IllegalStateException(where + "@" + at + ": torn record of " + length);
      byte[] data = new byte[(int) length];
      b.get(data);
      int dataCrc = b.getInt();
      expected = EventFile.maskedCrc32c(data, 0, data.length);
      if (dataCrc != expected)
        throw new IllegalStateException(
            String.format("%s@%d: data crc %08x, expected %08x", where, at, dataCrc, expected));
      out.add(data);
    }
    return out;
  }

  static Event event(byte[] data) {
    Wire w = new Wire(data);
    double wallTime = 0;
    long step = 0;
    String fileVersion = null;
    Map<String, Float> values = new LinkedHashMap<>();
    int status = 0;
    while (w.more()) {
      long tag = w.varint();
      int field = (int) (tag >>> 3), type = (int) (tag & 7);
      switch (field) {
        case 1 -> wallTime = Double.longBitsToDouble(w.fixed64(type));
        case 2 -> step = w.varint(type);
        case 3 -> fileVersion = new String(w.bytes(type), StandardCharsets.UTF_8);
        case 5 -> summary(w.bytes(type), values);
        case 7 -> status = sessionStatus(w.bytes(type));
        default -> throw new IllegalStateException("unexpected Event field " + field);
      }
    }
    return new Event(wallTime, step, fileVersion, values, status);
  }

  private static void summary(byte[] data, Map<String, Float> values) {
    Wire w = new Wire(data);
    while (w.more()) {
      long tag = w.varint();
      if (tag >>> 3 != 1)
        throw new IllegalStateException("unexpected Summary field " + (tag >>> 3));
      Wire v = new Wire(w.bytes((int) (tag & 7)));
      String name = null;
      Float value = null;
      while (v.more()) {
        long t = v.varint();
        switch ((int) (t >>> 3)) {
          case 1 -> name = new String(v.bytes((int) (t & 7)), StandardCharsets.UTF_8);
          case 2 -> value = Float.intBitsToFloat(v.fixed32((int) (t & 7)));
          default -> throw new IllegalStateException("unexpected Value field " + (t >>> 3));
        }
      }
      if (name == null || value == null)
        throw new IllegalStateException("Value without tag or simple_value");
      values.put(name, value);
    }
  }

  private static int sessionStatus(byte[] data) {
    Wire w = new Wire(data);
    int status = 0;
    while (w.more()) {
      long t = w.varint();
      if (t >>> 3 != 1) throw new IllegalStateException("unexpected SessionLog field " + (t >>> 3));
      status = (int) w.varint((int) (t & 7));
    }
    return status;
  }

  /** The protobuf wire format, read side. */
  private static final class Wire {
    private final ByteBuffer b;

    Wire(byte[] data) {
      b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    }

    boolean more() {
      return b.hasRemaining();
    }

    long varint() {
      long v = 0;
      for (int shift = 0; ; shift += 7) {
        byte x = b.get();
        v |= (long) (x & 0x7F) << shift;
        if (x >= 0) return v;
      }
    }

    long varint(int type) {
      expect(type, 0);
      return varint();
    }

    long fixed64(int type) {
      expect(type, 1);
      return b.getLong();
    }

    int fixed32(int type) {
      expect(type, 5);
      return b.getInt();
    }

    byte[] bytes(int type) {
      expect(type, 2);
      byte[] out = new byte[(int) varint()];
      b.get(out);
      return out;
    }

    private static void expect(int type, int wanted) {
      if (type != wanted)
        throw new IllegalStateException("wire type " + type + ", expected " + wanted);
    }
  }
}
