package dev.hanlin.train.metrics;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * A TensorBoard event file, written by hand: TFRecord framing around {@code tensorflow.Event}
 * protobufs encoded without a protobuf library.
 *
 * <p>Record: {@code uint64 length, uint32 masked_crc32c(length bytes), data, uint32
 * masked_crc32c(data)}, all little-endian; mask: {@code ((crc >>> 15) | (crc << 17)) + 0xa282ead8}.
 * Fields used (tensorboard/compat/proto/event.proto, summary.proto): {@code Event { double
 * wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; SessionLog
 * session_log = 7; }}, {@code Summary { repeated Value value = 1; }}, {@code Value { string tag =
 * 1; float simple_value = 2; }}, {@code SessionLog { SessionStatus status = 1; }} with {@code START
 * = 1}.
 */
public final class EventFile implements AutoCloseable {
  /** What the first record of every event file says. */
  public static final String FILE_VERSION = "brain.Event:2";

  /** {@code SessionLog.SessionStatus.START}. */
  static final int SESSION_START = 1;

  private static final int MASK_DELTA = 0xa282ead8;

  private final Path path;
  private final OutputStream out;

  private EventFile(Path path, OutputStream out) {
    this.path = path;
    this.out = out;
  }

  /** Creates {@code path} (which must not exist) and writes the file-version record. */
  public static EventFile create(Path path, double wallTime) throws IOException {
    OutputStream out = Files.newOutputStream(path, StandardOpenOption.CREATE_NEW);
    EventFile f = new EventFile(path, out);
    f.write(fileVersionEvent(wallTime));
    return f;
  }

  /** The file's path. */
  public Path path() {
    return path;
  }

  /** Frames one serialized Event and flushes it to disk. */
  public void write(byte[] event) throws IOException {
    out.write(record(event));
    out.flush();
  }

  @Override
  public void close() throws IOException {
    out.close();
  }

  /** The TFRecord bytes of one record. */
  public static byte[] record(byte[] data) {
    ByteBuffer b = ByteBuffer.allocate(8 + 4 + data.length + 4).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(data.length);
    b.putInt(maskedCrc32c(b.array(), 0, 8));
    b.put(data);
    b.putInt(maskedCrc32c(data, 0, data.length));
    return b.array();
  }

  /** CRC32C (Castagnoli) of the bytes, masked as TFRecord does. */
  public static int maskedCrc32c(byte[] bytes, int offset, int length) {
    CRC32C crc = new CRC32C();
    crc.update(bytes, offset, length);
    return mask((int) crc.getValue());
  }

  /** TFRecord's CRC mask (so that CRCs of data containing CRCs stay well distributed). */
  public static int mask(int crc) {
    return ((crc >>> 15) | (crc << 17)) + MASK_DELTA;
  }

  /** {@code Event{wall_time, file_version: "brain.Event:2"}}. */
  public static byte[] fileVersionEvent(double wallTime) {
    Proto p = new Proto();
    p.fixed64(1, Double.doubleToRawLongBits(wallTime));
    p.bytes(3, FILE_VERSION.getBytes(StandardCharsets.UTF_8));
    return p.toByteArray();
  }

  /** {@code Event{wall_time, step, summary{value{tag, simple_value}...}}}, values in map order. */
  public static byte[] scalarsEvent(double wallTime, long step, Map<String, Float> values) {
    Proto summary = new Proto();
    for (Map.Entry<String, Float> e : values.entrySet()) {
      Proto v = new Proto();
      v.bytes(1, e.getKey().getBytes(StandardCharsets.UTF_8));
      // simple_value sits in a oneof: written even when 0, or the value would have no kind.
      v.fixed32(2, Float.floatToRawIntBits(e.getValue()));
      summary.bytes(1, v.toByteArray());
    }
    Proto p = header(wallTime, step);
    p.bytes(5, summary.toByteArray());
    return p.toByteArray();
  }

  /**
   * {@code Event{wall_time, step, session_log{status: START}}}: on a restart, TensorBoard's loader
   * drops the events of earlier files with a step at or above this one, i.e. what a killed run
   * wrote after the checkpoint this run resumes from.
   */
  public static byte[] sessionStartEvent(double wallTime, long step) {
    Proto log = new Proto();
    log.varint(1, SESSION_START);
    Proto p = header(wallTime, step);
    p.bytes(7, log.toByteArray());
    return p.toByteArray();
  }

  private static Proto header(double wallTime, long step) {
    Proto p = new Proto();
    p.fixed64(1, Double.doubleToRawLongBits(wallTime));
    if (step != 0) p.varint(2, step); // proto3 leaves default values out
    return p;
  }

  /** The protobuf wire format, the four pieces of it that events need. */
  static final class Proto {
    static final int VARINT = 0, FIXED64 = 1, LENGTH_DELIMITED = 2, FIXED32 = 5;
    private final ByteArrayOutputStream b = new ByteArrayOutputStream();

    void varint(int field, long v) {
      tag(field, VARINT);
      rawVarint(v);
    }

    void fixed64(int field, long v) {
      tag(field, FIXED64);
      for (int i = 0; i < 8; i++) b.write((int) (v >>> (8 * i)));
    }

    void fixed32(int field, int v) {
      tag(field, FIXED32);
      for (int i = 0; i < 4; i++) b.write(v >>> (8 * i));
    }

    void bytes(int field, byte[] v) {
      tag(field, LENGTH_DELIMITED);
      rawVarint(v.length);
      b.writeBytes(v);
    }

    byte[] toByteArray() {
      return b.toByteArray();
    }

    private void tag(int field, int wireType) {
      rawVarint(((long) field << 3) | wireType);
    }

    private void rawVarint(long v) {
      while ((v & ~0x7FL) != 0) {
        b.write((int) ((v & 0x7F) | 0x80));
        v >>>= 7;
      }
      b.write((int) v);
    }
  }
}
