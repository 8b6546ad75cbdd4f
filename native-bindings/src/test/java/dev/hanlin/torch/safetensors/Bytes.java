package dev.hanlin.torch.safetensors;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/** Test helpers: tensors with random bytes, raw bytes of a tensor, hand-made safetensors files. */
final class Bytes {
  private Bytes() {}

  /** A CPU tensor whose bytes are random (0 or 1 for BOOL, so every value is a valid bool). */
  static Tensor random(Random rnd, DType dtype, long... shape) {
    Tensor t = Torch.empty(dtype, Device.CPU, shape);
    long n = t.byteSize();
    if (n == 0) return t;
    MemorySegment seg = MemorySegment.ofAddress(t.dataAddress()).reinterpret(n);
    for (long i = 0; i < n; i++) {
      byte b = dtype == DType.BOOL ? (byte) rnd.nextInt(2) : (byte) rnd.nextInt(256);
      seg.set(ValueLayout.JAVA_BYTE, i, b);
    }
    return t;
  }

  /** The row-major bytes of a tensor (any device, any layout). */
  static byte[] of(Tensor t) {
    Tensor c = t.to(Device.CPU).contiguous();
    long n = c.byteSize();
    if (n == 0) return new byte[0];
    return MemorySegment.ofAddress(c.dataAddress()).reinterpret(n).toArray(ValueLayout.JAVA_BYTE);
  }

  /** A file of: 8-byte little-endian {@code headerLength}, the header bytes, the data bytes. */
  static Path file(Path dir, String name, long headerLength, byte[] header, byte[] data)
      throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(
        ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerLength).array());
    out.writeBytes(header);
    out.writeBytes(data);
    Path p = dir.resolve(name);
    Files.write(p, out.toByteArray());
    return p;
  }

  /** A well-formed length prefix for a JSON header, followed by {@code dataBytes} zero bytes. */
  static Path file(Path dir, String name, String json, int dataBytes) throws IOException {
    byte[] h = json.getBytes(StandardCharsets.UTF_8);
    return file(dir, name, h.length, h, new byte[dataBytes]);
  }

  static Path file(Path dir, String name, byte[] all) throws IOException {
    Path p = dir.resolve(name);
    Files.write(p, all);
    return p;
  }
}
