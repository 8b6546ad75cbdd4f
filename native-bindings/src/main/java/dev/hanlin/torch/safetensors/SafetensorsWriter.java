package dev.hanlin.torch.safetensors;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.io.AtomicFiles;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes safetensors files the way the reference writer ({@code prepare} in {@code
 * safetensors/src/tensor.rs}) does: tensors ordered by descending element size, then name, so every
 * tensor's data is aligned to its element size; the JSON header padded with spaces to a multiple of
 * 8. The {@code __metadata__} map always carries {@code "format": "pt"}, without which transformers
 * refuses the file.
 *
 * <p>Writes are atomic: the bytes go to a hidden temporary file in the same folder, are forced to
 * disk, and the file is renamed over the target. On any failure the temporary file is deleted and
 * an existing target is left as it was.
 */
public final class SafetensorsWriter {
  private static final long CHUNK = 1L << 30; // ByteBuffer views are limited to 2 GiB

  private SafetensorsWriter() {}

  /**
   * Writes {@code tensors} (any device, dtype and layout) with {@code metadata} to {@code path}.
   */
  public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata)
      throws IOException {
    List<Entry> entries = layout(path, tensors);
    byte[] header = header(path, entries, metadata);
    writeAtomically(
        path,
        ch -> {
          ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
          len.putLong(header.length).flip();
          writeFully(ch, len);
          writeFully(ch, ByteBuffer.wrap(header));
          for (Entry e : entries) writeData(path, ch, e);
        });
  }

  /** Writes {@code tensors} with only the default metadata ({@code format: pt}). */
  public static void write(Path path, Map<String, Tensor> tensors) throws IOException {
    write(path, tensors, Map.of());
  }

  /** A tensor, its header entry, and its place in the data region. */
  private record Entry(
      String name, Tensor tensor, DType dtype, long[] shape, long begin, long end) {}

  /** A tensor still to come: its name, dtype and shape. */
  public record Planned(String name, DType dtype, long[] shape) {
    public long byteSize() {
      long n = dtype.byteSize();
      for (long d : shape) n *= d;
      return n;
    }
  }

  /**
   * Opens {@code path} for tensors that come one at a time: the header is that {@link #write} gives
   * tensors of these names, dtypes and shapes (so the file has the same bytes), and each tensor's
   * data goes to its place as it is {@link Streaming#put}. Nothing is visible at {@code path} until
   * {@link Streaming#commit}; a stream closed before that leaves no file.
   */
  public static Streaming open(Path path, List<Planned> planned) throws IOException {
    List<Entry> entries = new ArrayList<>();
    List<Planned> sorted = new ArrayList<>(planned);
    sorted.sort(
        Comparator.comparingInt((Planned n) -> -n.dtype().byteSize()).thenComparing(Planned::name));
    long offset = 0;
    for (Planned n : sorted) {
      entries.add(new Entry(n.name(), null, n.dtype(), n.shape(), offset, offset + n.byteSize()));
      offset += n.byteSize();
    }
    return new Streaming(path.toAbsolutePath(), entries, header(path, entries, Map.of()));
  }

  /** A file being written one tensor at a time; see {@link #open}. */
  public static final class Streaming implements AutoCloseable {
    private final Path target, tmp;
    private final FileChannel ch;
    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private final long dataStart;
    private final java.util.Set<String> written = new java.util.HashSet<>();
    private boolean committed;

    private Streaming(Path target, List<Entry> entries, byte[] header) throws IOException {
      this.target = target;
      this.tmp =
          target.resolveSibling(
              "."
                  + target.getFileName()
                  + "."
                  + Long.toHexString(ThreadLocalRandom.current().nextLong())
                  + ".tmp");
      for (Entry e : entries) this.entries.put(e.name(), e);
      this.ch =
          FileChannel.open(
              tmp,
              java.nio.file.StandardOpenOption.CREATE_NEW,
              java.nio.file.StandardOpenOption.WRITE);
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      len.putLong(header.length).flip();
      writeFully(ch, len);
      writeFully(ch, ByteBuffer.wrap(header));
      this.dataStart = 8 + header.length;
    }

    /** Writes the planned tensor {@code name} (same dtype and shape; any device) in its place. */
    public void put(String name, Tensor t) throws IOException {
      Entry e = entries.get(name);
      if (e == null || !written.add(name))
        throw new SafetensorsException(target, "'" + name + "' is not planned or came twice");
      long bytes = e.end() - e.begin();
      if (t.dtype() != e.dtype() || !Arrays.equals(t.shape(), e.shape()))
        throw new SafetensorsException(
            target,
            "'" + name + "' is " + t + ", planned " + e.dtype() + Arrays.toString(e.shape()));
      if (bytes == 0) return;
      try (Scope s = Scope.open()) {
        Tensor cpu = t.to(Device.CPU).contiguous();
        MemorySegment src = MemorySegment.ofAddress(cpu.dataAddress()).reinterpret(bytes);
        long at = dataStart + e.begin();
        for (long done = 0; done < bytes; ) {
          ByteBuffer b = src.asSlice(done, Math.min(CHUNK, bytes - done)).asByteBuffer();
          while (b.hasRemaining()) done += ch.write(b, at + done);
        }
      }
    }

    /** Once every planned tensor is in: forces the file to disk and renames it into place. */
    public void commit() throws IOException {
      if (written.size() != entries.size())
        throw new SafetensorsException(
            target, (entries.size() - written.size()) + " planned tensors were not written");
      ch.force(true);
      ch.close();
      AtomicFiles.commit(tmp, target);
      committed = true;
    }

    @Override
    public void close() throws IOException {
      if (committed) return;
      ch.close();
      java.nio.file.Files.deleteIfExists(tmp);
    }
  }

  private static List<Entry> layout(Path path, Map<String, Tensor> tensors)
      throws SafetensorsException {
    record Named(String name, Tensor tensor, DType dtype) {}
    List<Named> named = new ArrayList<>();
    for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
      String name = e.getKey();
      if (name == null || name.equals(SafetensorsFile.METADATA_KEY)) {
        throw new SafetensorsException(path, "invalid tensor name '" + name + "'");
      }
      Tensor t = e.getValue();
      if (t == null || t.isClosed()) {
        throw new SafetensorsException(path, "tensor '" + name + "' is null or closed");
      }
      DType dtype;
      try {
        dtype = t.dtype();
      } catch (IllegalArgumentException ex) {
        throw new SafetensorsException(
            path, "tensor '" + name + "' has a dtype safetensors cannot store: " + ex.getMessage());
      }
      named.add(new Named(name, t, dtype));
    }
    // Largest element first, then by name: every tensor then starts on a multiple of its element
    // size, so readers can view it in place.
    named.sort(
        Comparator.comparingInt((Named n) -> -n.dtype().byteSize()).thenComparing(Named::name));
    List<Entry> out = new ArrayList<>();
    long offset = 0;
    for (Named n : named) {
      long bytes = n.tensor().byteSize();
      out.add(
          new Entry(n.name(), n.tensor(), n.dtype(), n.tensor().shape(), offset, offset + bytes));
      offset += bytes;
    }
    return out;
  }

  private static byte[] header(Path path, List<Entry> entries, Map<String, String> metadata)
      throws SafetensorsException {
    Map<String, Object> root = new LinkedHashMap<>();
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("format", "pt");
    meta.putAll(metadata);
    root.put(SafetensorsFile.METADATA_KEY, meta);
    for (Entry e : entries) {
      Map<String, Object> info = new LinkedHashMap<>();
      info.put("dtype", e.dtype().name());
      info.put("shape", e.shape());
      info.put("data_offsets", new long[] {e.begin(), e.end()});
      root.put(e.name(), info);
    }
    byte[] json;
    try {
      json = SafetensorsFile.JSON.writeValueAsBytes(root);
    } catch (JsonProcessingException ex) {
      throw new SafetensorsException(path, "cannot encode header: " + ex.getMessage(), ex);
    }
    int padded = (json.length + 7) / 8 * 8;
    if (padded > SafetensorsFile.MAX_HEADER_BYTES) {
      throw new SafetensorsException(
          path,
          "header of "
              + padded
              + " bytes exceeds the "
              + SafetensorsFile.MAX_HEADER_BYTES
              + "-byte limit readers enforce");
    }
    byte[] out = Arrays.copyOf(json, padded);
    Arrays.fill(out, json.length, padded, (byte) ' ');
    return out;
  }

  private static void writeData(Path path, FileChannel ch, Entry e) throws IOException {
    long bytes = e.end() - e.begin();
    if (bytes == 0) return;
    try (Scope s = Scope.open()) {
      Tensor cpu = e.tensor().to(Device.CPU).contiguous();
      if (cpu.byteSize() != bytes) {
        throw new SafetensorsException(
            path, "tensor '" + e.name() + "' changed size while being written");
      }
      MemorySegment src = MemorySegment.ofAddress(cpu.dataAddress()).reinterpret(bytes);
      for (long at = 0; at < bytes; at += CHUNK) {
        writeFully(ch, src.asSlice(at, Math.min(CHUNK, bytes - at)).asByteBuffer());
      }
    }
  }

  static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
    AtomicFiles.writeFully(ch, buf);
  }

  /**
   * Writes {@code path} through a hidden, randomly named temporary sibling ({@link AtomicFiles}):
   * body, fsync, rename over the target, fsync of the folder. The temporary file is removed on any
   * failure.
   */
  static void writeAtomically(Path path, AtomicFiles.Body body) throws IOException {
    Path target = path.toAbsolutePath();
    Path tmp =
        target.resolveSibling(
            "."
                + target.getFileName()
                + "."
                + Long.toHexString(ThreadLocalRandom.current().nextLong())
                + ".tmp");
    try {
      AtomicFiles.write(target, tmp, body);
    } catch (SafetensorsException ex) {
      throw ex;
    } catch (IOException | RuntimeException ex) {
      throw new SafetensorsException(target, "write failed: " + ex, ex);
    }
  }
}
