package dev.hanlin.torch.safetensors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A memory-mapped safetensors file (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of UTF-8 JSON, then the raw little-endian tensor data.
 *
 * <p>{@link #open} checks everything the reference reader ({@code SafeTensors::read_metadata} in
 * {@code safetensors/src/tensor.rs}) checks, so a file it accepts is one the Rust/Python library
 * accepts: the header is at most {@link #MAX_HEADER_BYTES}, valid UTF-8 JSON; every tensor has a
 * known dtype, a shape whose byte size does not overflow and equals {@code end - begin}; sorted by
 * offset, the tensors tile the data region exactly (no overlap, no gap, nothing after the last).
 * After that no view can read outside the mapping.
 *
 * <p>The mapping lives in a shared {@link Arena} that {@link #close()} releases: tensors from
 * {@link #view} point into it and must not be used after close, nor written to (the mapping is
 * read-only, and a write is a SIGSEGV). {@link #load} returns owning copies that outlive the file.
 */
public final class SafetensorsFile implements AutoCloseable {
  /** The reference implementation's limit on the JSON header, 100 MB. */
  public static final long MAX_HEADER_BYTES = 100_000_000L;

  /** The key of the optional string-to-string metadata map in the header. */
  public static final String METADATA_KEY = "__metadata__";

  static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private final Path path;
  private final Arena arena;
  private final MemorySegment segment;
  private final long dataStart;
  private final Map<String, TensorInfo> tensors; // in file (offset) order
  private final Map<String, String> metadata;

  private SafetensorsFile(
      Path path,
      Arena arena,
      MemorySegment segment,
      long dataStart,
      Map<String, TensorInfo> tensors,
      Map<String, String> metadata) {
    this.path = path;
    this.arena = arena;
    this.segment = segment;
    this.dataStart = dataStart;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  /** Maps and validates {@code path}; the header may be at most {@link #MAX_HEADER_BYTES}. */
  public static SafetensorsFile open(Path path) throws IOException {
    return open(path, MAX_HEADER_BYTES);
  }

  /** Maps and validates {@code path} with a custom header-size limit. */
  public static SafetensorsFile open(Path path, long maxHeaderBytes) throws IOException {
    Arena arena = Arena.ofShared();
    try {
      MemorySegment segment;
      try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
        segment = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
      } catch (IOException e) {
        throw new SafetensorsException(path, "cannot map: " + e, e);
      }
      long fileSize = segment.byteSize();
      if (fileSize < 8) {
        throw new SafetensorsException(
            path, "file is " + fileSize + " bytes, too short for the 8-byte header length");
      }
      long n = segment.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
      if (n < 0 || n > maxHeaderBytes) {
        throw new SafetensorsException(
            path,
            "header length "
                + Long.toUnsignedString(n)
                + " exceeds the limit of "
                + maxHeaderBytes
                + " bytes");
      }
      if (n > fileSize - 8) {
        throw new SafetensorsException(
            path,
            "header length "
                + n
                + " runs past the end of the file ("
                + fileSize
                + " bytes, so at most "
                + (fileSize - 8)
                + "); the file is truncated or not safetensors");
      }
      byte[] headerBytes = segment.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
      JsonNode root = parseHeader(path, headerBytes);
      long dataStart = 8 + n;
      long dataLength = fileSize - dataStart;
      Map<String, String> metadata = new LinkedHashMap<>();
      List<TensorInfo> infos = new ArrayList<>();
      for (Map.Entry<String, JsonNode> e : root.properties()) {
        if (e.getKey().equals(METADATA_KEY)) {
          readMetadata(path, e.getValue(), metadata);
        } else {
          infos.add(readInfo(path, e.getKey(), e.getValue()));
        }
      }
      Map<String, TensorInfo> tensors = validateLayout(path, infos, dataLength);
      return new SafetensorsFile(
          path,
          arena,
          segment,
          dataStart,
          Collections.unmodifiableMap(tensors),
          Collections.unmodifiableMap(metadata));
    } catch (IOException | RuntimeException e) {
      arena.close();
      throw e;
    }
  }

  private static JsonNode parseHeader(Path path, byte[] bytes) throws SafetensorsException {
    CharsetDecoder dec =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    ByteBuffer in = ByteBuffer.wrap(bytes);
    CharBuffer out = CharBuffer.allocate(bytes.length);
    CoderResult r = dec.decode(in, out, true);
    if (r.isError()) {
      throw new SafetensorsException(
          path, "header is not valid UTF-8 at file offset " + (8 + in.position()));
    }
    dec.flush(out);
    String text = out.flip().toString();
    JsonNode root;
    try {
      root = JSON.readTree(text);
    } catch (JsonProcessingException e) {
      String at =
          e.getLocation() == null
              ? ""
              : " (at file offset " + (8 + e.getLocation().getCharOffset()) + ", if ASCII)";
      throw new SafetensorsException(
          path, "header is not valid JSON: " + e.getOriginalMessage() + at, e);
    }
    if (root == null || !root.isObject()) {
      throw new SafetensorsException(
          path,
          "header must be a JSON object, found "
              + (root == null ? "nothing" : root.getNodeType().toString().toLowerCase()));
    }
    return root;
  }

  private static void readMetadata(Path path, JsonNode node, Map<String, String> out)
      throws SafetensorsException {
    if (node.isNull()) return;
    if (!node.isObject()) {
      throw new SafetensorsException(
          path, METADATA_KEY + " must be an object of strings, found " + node.getNodeType());
    }
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      if (!e.getValue().isTextual()) {
        throw new SafetensorsException(
            path,
            METADATA_KEY
                + " value for '"
                + e.getKey()
                + "' must be a string, found "
                + e.getValue().getNodeType());
      }
      out.put(e.getKey(), e.getValue().textValue());
    }
  }

  private static TensorInfo readInfo(Path path, String name, JsonNode node)
      throws SafetensorsException {
    String where = "tensor '" + name + "': ";
    if (!node.isObject()) {
      throw new SafetensorsException(path, where + "entry must be an object");
    }
    JsonNode dt = node.get("dtype");
    if (dt == null || !dt.isTextual()) {
      throw new SafetensorsException(path, where + "missing or non-string 'dtype'");
    }
    DType dtype = DType.fromSafetensors(dt.textValue());
    if (dtype == null) {
      throw new SafetensorsException(
          path,
          where
              + "unknown dtype '"
              + dt.textValue()
              + "' (known: "
              + Arrays.toString(DType.values())
              + ")");
    }
    JsonNode sh = node.get("shape");
    if (sh == null || !sh.isArray()) {
      throw new SafetensorsException(path, where + "missing or non-array 'shape'");
    }
    long[] shape = new long[sh.size()];
    for (int i = 0; i < shape.length; i++) {
      shape[i] = nonNegative(path, where + "shape[" + i + "]", sh.get(i));
    }
    JsonNode off = node.get("data_offsets");
    if (off == null || !off.isArray() || off.size() != 2) {
      throw new SafetensorsException(
          path, where + "'data_offsets' must be an array [begin, end], found " + off);
    }
    long begin = nonNegative(path, where + "data_offsets[0]", off.get(0));
    long end = nonNegative(path, where + "data_offsets[1]", off.get(1));
    return new TensorInfo(name, dtype, shape, begin, end);
  }

  private static long nonNegative(Path path, String what, JsonNode v) throws SafetensorsException {
    if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
      throw new SafetensorsException(
          path, what + " must be a non-negative 64-bit integer, found " + v);
    }
    return v.longValue();
  }

  /**
   * The reference's {@code Metadata::validate} plus the end-of-file check: sorted by offsets, each
   * tensor starts where the previous one ended, and the last one ends at the end of the file.
   */
  private static Map<String, TensorInfo> validateLayout(
      Path path, List<TensorInfo> infos, long dataLength) throws SafetensorsException {
    for (TensorInfo t : infos) {
      String where = "tensor '" + t.name() + "' ";
      if (t.end() < t.begin()) {
        throw new SafetensorsException(
            path, where + "has data_offsets [" + t.begin() + ", " + t.end() + "] with end < begin");
      }
      long numel = 1;
      long bytes;
      try {
        for (long d : t.shape()) numel = Math.multiplyExact(numel, d);
        bytes = Math.multiplyExact(numel, (long) t.dtype().byteSize());
      } catch (ArithmeticException e) {
        throw new SafetensorsException(
            path,
            where
                + "shape "
                + Arrays.toString(t.shape())
                + " of "
                + t.dtype()
                + " overflows 64 bits when counting bytes");
      }
      if (t.end() - t.begin() != bytes) {
        throw new SafetensorsException(
            path,
            where
                + t.dtype()
                + Arrays.toString(t.shape())
                + " needs "
                + bytes
                + " bytes but data_offsets ["
                + t.begin()
                + ", "
                + t.end()
                + "] hold "
                + (t.end() - t.begin()));
      }
      if (t.end() > dataLength) {
        throw new SafetensorsException(
            path,
            where
                + "data_offsets ["
                + t.begin()
                + ", "
                + t.end()
                + "] run past the data region of "
                + dataLength
                + " bytes (file truncated?)");
      }
    }
    List<TensorInfo> sorted = new ArrayList<>(infos);
    sorted.sort(
        Comparator.comparingLong(TensorInfo::begin)
            .thenComparingLong(TensorInfo::end)
            .thenComparing(TensorInfo::name));
    Map<String, TensorInfo> out = new LinkedHashMap<>();
    long expected = 0;
    TensorInfo previous = null;
    for (TensorInfo t : sorted) {
      if (t.begin() < expected) {
        throw new SafetensorsException(
            path,
            "tensor '"
                + t.name()
                + "' at ["
                + t.begin()
                + ", "
                + t.end()
                + ") overlaps tensor '"
                + previous.name()
                + "' at ["
                + previous.begin()
                + ", "
                + previous.end()
                + ")");
      }
      if (t.begin() > expected) {
        throw new SafetensorsException(
            path,
            "data bytes ["
                + expected
                + ", "
                + t.begin()
                + ") before tensor '"
                + t.name()
                + "' belong to no tensor (the format requires tensors to tile the data region)");
      }
      expected = t.end();
      previous = t;
      out.put(t.name(), t);
    }
    if (expected != dataLength) {
      throw new SafetensorsException(
          path,
          "data region is "
              + dataLength
              + " bytes but the tensors cover only "
              + expected
              + (previous == null ? "" : " (last tensor '" + previous.name() + "')")
              + "; trailing bytes are not allowed");
    }
    return out;
  }

  /** The file this was opened from. */
  public Path path() {
    return path;
  }

  /** Tensor names in file order (by data offset). */
  public List<String> names() {
    return List.copyOf(tensors.keySet());
  }

  /** Whether the file holds a tensor of this name. */
  public boolean contains(String name) {
    return tensors.containsKey(name);
  }

  /** Every tensor's header entry, in file order. */
  public Map<String, TensorInfo> infos() {
    return tensors;
  }

  /** The header entry of one tensor. */
  public TensorInfo info(String name) throws SafetensorsException {
    TensorInfo t = tensors.get(name);
    if (t == null) throw new SafetensorsException(path, "no tensor '" + name + "'");
    return t;
  }

  /** The {@code __metadata__} map (empty when absent). */
  public Map<String, String> metadata() {
    return metadata;
  }

  /**
   * A CPU tensor over the mapped bytes, zero-copy: valid only while this file is open, and never to
   * be written. When the data is not aligned to its element size (legal in the format, never
   * produced by the reference writer or {@link SafetensorsWriter}), or has no elements, the result
   * is an owning aligned copy instead.
   */
  public Tensor view(String name) throws SafetensorsException {
    TensorInfo t = info(name);
    checkOpen();
    long address = segment.address() + dataStart + t.begin();
    long[] shape = t.shape();
    if (t.byteSize() == 0) return Torch.empty(t.dtype(), Device.CPU, shape);
    if (address % t.dtype().byteSize() != 0) return alignedCopy(t);
    return Torch.fromAddress(address, t.dtype(), shape);
  }

  /** An owning CPU copy of one tensor, valid after this file closes. */
  public Tensor load(String name) throws SafetensorsException {
    TensorInfo t = info(name);
    checkOpen();
    long address = segment.address() + dataStart + t.begin();
    if (t.byteSize() == 0 || address % t.dtype().byteSize() != 0) return view(name);
    try (Tensor v = view(name)) {
      return v.copy();
    }
  }

  /** An owning copy converted to {@code dtype} on {@code device}. */
  public Tensor load(String name, DType dtype, Device device) throws SafetensorsException {
    TensorInfo t = info(name);
    if (dtype == t.dtype() && !device.isCuda()) return load(name);
    try (Tensor v = view(name)) {
      // A different dtype or device always allocates, so the result never aliases the mapping.
      return v.to(device, dtype, false);
    }
  }

  private Tensor alignedCopy(TensorInfo t) {
    Tensor out = Torch.empty(t.dtype(), Device.CPU, t.shape());
    MemorySegment dst = MemorySegment.ofAddress(out.dataAddress()).reinterpret(t.byteSize());
    MemorySegment.copy(segment, dataStart + t.begin(), dst, 0, t.byteSize());
    return out;
  }

  /** The raw bytes of one tensor as a read-only slice of the mapping (valid while open). */
  public MemorySegment bytes(String name) throws SafetensorsException {
    TensorInfo t = info(name);
    checkOpen();
    return segment.asSlice(dataStart + t.begin(), t.byteSize()).asReadOnly();
  }

  private void checkOpen() throws SafetensorsException {
    if (!arena.scope().isAlive()) throw new SafetensorsException(path, "file is closed");
  }

  /** Unmaps the file; views made from it become invalid. Idempotent. */
  @Override
  public void close() {
    if (arena.scope().isAlive()) arena.close();
  }

  @Override
  public String toString() {
    return "SafetensorsFile[" + path + ", " + tensors.size() + " tensors]";
  }
}
