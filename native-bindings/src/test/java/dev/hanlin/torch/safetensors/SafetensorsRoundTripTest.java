package dev.hanlin.torch.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
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
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writing and reading back every dtype and shape edge case, byte for byte, and golden files. */
class SafetensorsRoundTripTest {
  @TempDir Path dir;

  @Test
  void everyDtypeRoundTripsByteForByte() throws IOException {
    Random rnd = new Random(7);
    Map<String, Tensor> in = new LinkedHashMap<>();
    for (DType d : DType.values()) {
      // Odd sizes so that a naive order would misalign the wider types after the narrow ones.
      in.put("t." + d.name().toLowerCase(), Bytes.random(rnd, d, 3, 5));
    }
    Path p = dir.resolve("all.safetensors");
    SafetensorsWriter.write(p, in, Map.of("note", "hello"));

    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertEquals(in.size(), f.names().size());
      assertEquals("pt", f.metadata().get("format"));
      assertEquals("hello", f.metadata().get("note"));
      for (Map.Entry<String, Tensor> e : in.entrySet()) {
        TensorInfo info = f.info(e.getKey());
        DType d = e.getValue().dtype();
        assertEquals(d, info.dtype(), e.getKey());
        assertArrayEquals(new long[] {3, 5}, info.shape());
        Tensor view = f.view(e.getKey());
        assertEquals(0, view.dataAddress() % d.byteSize(), "view of " + e.getKey() + " aligned");
        assertEquals(d, view.dtype());
        assertArrayEquals(Bytes.of(e.getValue()), Bytes.of(view), e.getKey());
        Tensor loaded = f.load(e.getKey());
        assertTrue(loaded.dataAddress() != view.dataAddress(), "load copies");
        assertArrayEquals(Bytes.of(e.getValue()), Bytes.of(loaded), e.getKey());
        assertArrayEquals(Bytes.of(e.getValue()), toArray(f.bytes(e.getKey())));
      }
    }
  }

  @Test
  void loadedCopiesOutliveTheFile() throws IOException {
    Tensor x = Torch.fromFloats(new float[] {1, 2, 3, 4}, 2, 2);
    Path p = dir.resolve("x.safetensors");
    SafetensorsWriter.write(p, Map.of("x", x));
    Tensor copy;
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      copy = f.load("x");
    }
    assertArrayEquals(new float[] {1, 2, 3, 4}, copy.toFloatArray());
    SafetensorsFile closed = SafetensorsFile.open(p);
    closed.close();
    closed.close(); // idempotent
    SafetensorsException e = assertThrows(SafetensorsException.class, () -> closed.view("x"));
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
  }

  @Test
  void scalarAndEmptyTensors() throws IOException {
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("scalar", Torch.full(2.5, DType.F32, Device.CPU));
    in.put("empty_rows", Torch.empty(DType.BF16, Device.CPU, 0, 4));
    in.put("empty_cols", Torch.empty(DType.I64, Device.CPU, 3, 0));
    in.put("empty_1d", Torch.empty(DType.U8, Device.CPU, 0));
    in.put("after", Torch.fromLongs(new long[] {5, 6, 7}, 3));
    Path p = dir.resolve("edge.safetensors");
    SafetensorsWriter.write(p, in);
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertArrayEquals(new long[0], f.info("scalar").shape());
      assertEquals(4, f.info("scalar").byteSize());
      assertEquals(0, f.view("scalar").dim());
      assertEquals(2.5, f.load("scalar").item());
      for (String n : List.of("empty_rows", "empty_cols", "empty_1d")) {
        TensorInfo info = f.info(n);
        assertEquals(0, info.byteSize(), n);
        assertEquals(0, info.numel(), n);
        assertArrayEquals(in.get(n).shape(), f.view(n).shape(), n);
        assertArrayEquals(in.get(n).shape(), f.load(n).shape(), n);
        assertEquals(in.get(n).dtype(), f.load(n).dtype(), n);
      }
      assertArrayEquals(new long[] {5, 6, 7}, f.load("after").toLongArray());
    }
    // A file of nothing but empty tensors has an empty data region.
    Path onlyEmpty = dir.resolve("only-empty.safetensors");
    SafetensorsWriter.write(onlyEmpty, Map.of("e", Torch.empty(DType.F32, Device.CPU, 0)));
    try (SafetensorsFile f = SafetensorsFile.open(onlyEmpty)) {
      assertEquals(0, f.load("e").numel());
    }
    Path none = dir.resolve("none.safetensors");
    SafetensorsWriter.write(none, Map.of());
    try (SafetensorsFile f = SafetensorsFile.open(none)) {
      assertTrue(f.names().isEmpty());
    }
  }

  @Test
  void nonContiguousInputIsWrittenRowMajor() throws IOException {
    Tensor a = Torch.arange(6, DType.F32, Device.CPU).reshape(2, 3);
    Tensor t = a.transpose(0, 1); // (3, 2), strided
    assertFalse(t.isContiguous());
    Path p = dir.resolve("t.safetensors");
    SafetensorsWriter.write(p, Map.of("t", t));
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertArrayEquals(new long[] {3, 2}, f.info("t").shape());
      assertArrayEquals(new float[] {0, 3, 1, 4, 2, 5}, f.load("t").toFloatArray());
    }
  }

  @Test
  void loadConvertsDtype() throws IOException {
    Tensor x = Torch.fromFloats(new float[] {1.5f, -2f, 0.25f}, 3).to(DType.BF16);
    Path p = dir.resolve("bf.safetensors");
    SafetensorsWriter.write(p, Map.of("x", x));
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      Tensor y = f.load("x", DType.F32, Device.CPU);
      assertEquals(DType.F32, y.dtype());
      assertArrayEquals(new float[] {1.5f, -2f, 0.25f}, y.toFloatArray());
      assertEquals(DType.BF16, f.load("x", DType.BF16, Device.CPU).dtype());
    }
  }

  @Test
  void headerIsPaddedJsonWithFormatPt() throws IOException {
    Path p = dir.resolve("h.safetensors");
    SafetensorsWriter.write(p, Map.of("ab", Torch.fromLongs(new long[] {1}, 1)));
    byte[] all = Files.readAllBytes(p);
    long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    assertEquals(0, n % 8);
    assertEquals(8 + n + 8, all.length);
    String header = new String(all, 8, (int) n, StandardCharsets.UTF_8);
    JsonNode root = SafetensorsFile.JSON.readTree(header);
    assertEquals("pt", root.get("__metadata__").get("format").asText());
    assertEquals("I64", root.get("ab").get("dtype").asText());
    assertEquals("[0,8]", root.get("ab").get("data_offsets").toString());
    assertTrue(header.startsWith("{\"__metadata__\""), header);
  }

  @Test
  void failedWriteLeavesTargetUntouchedAndNoTempFile() throws IOException {
    Path p = dir.resolve("keep.safetensors");
    SafetensorsWriter.write(p, Map.of("x", Torch.fromFloats(new float[] {1}, 1)));
    byte[] before = Files.readAllBytes(p);
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                SafetensorsWriter.writeAtomically(
                    p,
                    ch -> {
                      SafetensorsWriter.writeFully(ch, ByteBuffer.wrap(new byte[100]));
                      throw new IOException("disk full (simulated)");
                    }));
    assertTrue(e.getMessage().contains("keep.safetensors"), e.getMessage());
    assertArrayEquals(before, Files.readAllBytes(p));
    Tensor closed = Torch.fromFloats(new float[] {1}, 1);
    closed.close();
    e =
        assertThrows(
            SafetensorsException.class, () -> SafetensorsWriter.write(p, Map.of("c", closed)));
    assertTrue(e.getMessage().contains("'c'"), e.getMessage());
    assertArrayEquals(before, Files.readAllBytes(p));
    try (Stream<Path> s = Files.list(dir)) {
      assertEquals(List.of(p), s.toList(), "no temporary files left behind");
    }
  }

  /**
   * The exact bytes that huggingface/safetensors' own test ({@code test_serialization} in
   * safetensors/src/tensor.rs) expects its writer to produce for {@code attn.0 = F32 [1,2,3] of
   * 0..5}: a golden file the project did not write.
   */
  @Test
  void readsReferenceGoldenBytes() throws IOException {
    int[] golden = {
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121,
      112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50,
      44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48,
      44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64,
      0, 0, 160, 64
    };
    byte[] b = new byte[golden.length];
    for (int i = 0; i < b.length; i++) b[i] = (byte) golden[i];
    try (SafetensorsFile f = SafetensorsFile.open(Bytes.file(dir, "golden.safetensors", b))) {
      assertEquals(List.of("attn.0"), f.names());
      assertArrayEquals(new long[] {1, 2, 3}, f.info("attn.0").shape());
      assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5}, f.load("attn.0").toFloatArray());
      assertTrue(f.metadata().isEmpty());
    }
    // test_empty in the same file: no tensors, metadata {"framework": "pt"}.
    byte[] empty = {40, 0, 0, 0, 0, 0, 0, 0};
    byte[] json = "{\"__metadata__\":{\"framework\":\"pt\"}}     ".getBytes(StandardCharsets.UTF_8);
    byte[] all = Arrays.copyOf(empty, 8 + json.length);
    System.arraycopy(json, 0, all, 8, json.length);
    try (SafetensorsFile f = SafetensorsFile.open(Bytes.file(dir, "empty.safetensors", all))) {
      assertTrue(f.names().isEmpty());
      assertEquals(Map.of("framework", "pt"), f.metadata());
    }
  }

  /**
   * A file written by numpy alone, not by this project's writer: unpadded header with json.dumps
   * spacing, and tensors at unaligned offsets (the F32 starts at byte 3). Produced by:
   *
   * <pre>
   * arrs = {'z_u8': np.array([1, 2, 3], np.uint8), 'a_f32': np.array([[1.25, -3.5]], np.float32),
   *         'm_i16': np.array([-2, 300], np.int16)}
   * hdr, off, blobs = {}, 0, []
   * for k, a in arrs.items():
   *     raw = a.tobytes()
   *     hdr[k] = {'dtype': {'uint8': 'U8', 'float32': 'F32', 'int16': 'I16'}[str(a.dtype)],
   *               'shape': list(a.shape), 'data_offsets': [off, off + len(raw)]}
   *     off += len(raw); blobs.append(raw)
   * hj = json.dumps(hdr).encode()
   * out = struct.pack('&lt;Q', len(hj)) + hj + b''.join(blobs)
   * </pre>
   */
  @Test
  void readsNumpyWrittenGolden() throws IOException {
    String b64 =
        "xwAAAAAAAAB7InpfdTgiOiB7ImR0eXBlIjogIlU4IiwgInNoYXBlIjogWzNdLCAiZGF0YV9vZmZzZXRzIjogWzAsIDNd"
            + "fSwgImFfZjMyIjogeyJkdHlwZSI6ICJGMzIiLCAic2hhcGUiOiBbMSwgMl0sICJkYXRhX29mZnNldHMiOiBbMywgMTFd"
            + "fSwgIm1faTE2IjogeyJkdHlwZSI6ICJJMTYiLCAic2hhcGUiOiBbMl0sICJkYXRhX29mZnNldHMiOiBbMTEsIDE1XX19"
            + "AQIDAACgPwAAYMD+/ywB";
    byte[] b = java.util.Base64.getDecoder().decode(b64);
    try (SafetensorsFile f = SafetensorsFile.open(Bytes.file(dir, "numpy.safetensors", b))) {
      assertEquals(List.of("z_u8", "a_f32", "m_i16"), f.names());
      assertArrayEquals(new long[] {1, 2, 3}, f.load("z_u8").toLongArray());
      assertArrayEquals(new long[] {1, 2}, f.info("a_f32").shape());
      assertArrayEquals(new float[] {1.25f, -3.5f}, f.view("a_f32").toFloatArray());
      assertArrayEquals(new long[] {-2, 300}, f.load("m_i16").toLongArray());
      assertEquals(DType.I16, f.info("m_i16").dtype());
    }
  }

  /** Hand-made per the spec: BF16 and F16 bit patterns of known values, in file order. */
  @Test
  void readsHandMadeHalfPrecisionFile() throws IOException {
    String json =
        "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
    // BF16 1.0 = 0x3F80, -2.0 = 0xC000; F16 1.0 = 0x3C00, 0.5 = 0x3800 (little-endian)
    byte[] data = {(byte) 0x80, 0x3F, 0x00, (byte) 0xC0, 0x00, 0x3C, 0x00, 0x38};
    byte[] h = json.getBytes(StandardCharsets.UTF_8);
    try (SafetensorsFile f =
        SafetensorsFile.open(Bytes.file(dir, "half.safetensors", h.length, h, data))) {
      assertEquals(List.of("b", "h"), f.names(), "file order is offset order");
      assertArrayEquals(new float[] {1, -2}, f.load("b").toFloatArray());
      assertArrayEquals(new float[] {1, 0.5f}, f.load("h").toFloatArray());
    }
  }

  /** libtorch's from_blob + clone on an odd address works on CPU; views of such data are copies. */
  @Test
  void unalignedDataOffsetsAreLegal() throws IOException {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment seg = arena.allocate(32, 16);
      for (int i = 0; i < 4; i++) {
        seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED, 1 + 4L * i, i + 0.5f);
      }
      Tensor odd = Torch.fromAddress(seg.address() + 1, DType.F32, 4);
      assertArrayEquals(new float[] {0.5f, 1.5f, 2.5f, 3.5f}, odd.copy().toFloatArray());
    }
    String json =
        "{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
            + "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}";
    byte[] h = json.getBytes(StandardCharsets.UTF_8);
    int pad = (8 - h.length % 8) % 8; // so that the data region starts 8-aligned
    h = (json + " ".repeat(pad)).getBytes(StandardCharsets.UTF_8);
    ByteBuffer data = ByteBuffer.allocate(9).order(ByteOrder.LITTLE_ENDIAN);
    data.put((byte) 9).putFloat(1.25f).putFloat(-3f);
    try (SafetensorsFile f =
        SafetensorsFile.open(Bytes.file(dir, "odd.safetensors", h.length, h, data.array()))) {
      Tensor v = f.view("f");
      assertEquals(0, v.dataAddress() % 4, "unaligned data is copied to aligned memory");
      assertArrayEquals(new float[] {1.25f, -3f}, v.toFloatArray());
      assertArrayEquals(new float[] {1.25f, -3f}, f.load("f").toFloatArray());
      assertArrayEquals(new long[] {9}, f.load("u").toLongArray());
    }
  }

  private static byte[] toArray(MemorySegment s) {
    return s.toArray(ValueLayout.JAVA_BYTE);
  }
}
