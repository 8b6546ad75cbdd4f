package dev.hanlin.torch.safetensors;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Broken and malicious files: each must fail with a {@link SafetensorsException} naming the file
 * and what is wrong (the tensor, offsets, expected vs found), never crash or read out of bounds.
 */
class SafetensorsHostileTest {
  @TempDir Path dir;

  /** Opens {@code p} expecting failure; the message must name the file and every fragment. */
  private static SafetensorsException fails(Path p, String... fragments) {
    SafetensorsException e =
        assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(p));
    String m = e.getMessage();
    assertTrue(m.contains(p.getFileName().toString()), "names the file: " + m);
    for (String f : fragments) assertTrue(m.contains(f), "'" + f + "' in: " + m);
    return e;
  }

  private static String tensor(String name, String dtype, String shape, long begin, long end) {
    return "\""
        + name
        + "\":{\"dtype\":\""
        + dtype
        + "\",\"shape\":"
        + shape
        + ",\"data_offsets\":["
        + begin
        + ","
        + end
        + "]}";
  }

  private Path valid() throws IOException {
    Path p = dir.resolve("valid.safetensors");
    SafetensorsWriter.write(p, Map.of("w", Torch.fromFloats(new float[] {1, 2, 3, 4}, 2, 2)));
    return p;
  }

  @Test
  void tooShortForTheLength() throws IOException {
    fails(Bytes.file(dir, "empty.safetensors", new byte[0]), "0 bytes", "too short");
    fails(Bytes.file(dir, "five.safetensors", new byte[5]), "5 bytes", "too short");
  }

  @Test
  void headerLengthPastTheEnd() throws IOException {
    byte[] h = "{}".getBytes(StandardCharsets.UTF_8);
    fails(
        Bytes.file(dir, "long.safetensors", 100, h, new byte[0]), "header length 100", "10 bytes");
  }

  @Test
  void headerCutShort() throws IOException {
    byte[] all = Files.readAllBytes(valid());
    Path cut = Bytes.file(dir, "cut-header.safetensors", java.util.Arrays.copyOf(all, 30));
    fails(cut, "runs past the end");
  }

  @Test
  void dataCutShort() throws IOException {
    byte[] all = Files.readAllBytes(valid());
    Path cut =
        Bytes.file(dir, "cut-data.safetensors", java.util.Arrays.copyOf(all, all.length - 4));
    fails(cut, "tensor 'w'", "[0, 16]", "run past the data region of 12 bytes");
  }

  @Test
  void oversizedHeader() throws IOException {
    byte[] h = "{}".getBytes(StandardCharsets.UTF_8);
    fails(Bytes.file(dir, "huge.safetensors", 100_000_001L, h, new byte[0]), "100000001", "limit");
    fails(Bytes.file(dir, "neg.safetensors", -1L, h, new byte[0]), "18446744073709551615", "limit");
    Path p = valid();
    SafetensorsException e =
        assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(p, 16));
    assertTrue(e.getMessage().contains("limit of 16 bytes"), e.getMessage());
  }

  @Test
  void invalidJson() throws IOException {
    fails(Bytes.file(dir, "json.safetensors", "{\"a\": ", 0), "not valid JSON");
    fails(Bytes.file(dir, "trailing.safetensors", "{} x", 0), "not valid JSON");
    fails(Bytes.file(dir, "array.safetensors", "[1, 2]", 0), "must be a JSON object", "array");
    fails(Bytes.file(dir, "blank.safetensors", "        ", 0), "must be a JSON object");
    fails(
        Bytes.file(
            dir,
            "dup.safetensors",
            "{" + tensor("a", "U8", "[0]", 0, 0) + "," + tensor("a", "U8", "[0]", 0, 0) + "}",
            0),
        "not valid JSON",
        "'a'");
  }

  @Test
  void notUtf8() throws IOException {
    byte[] h = {'{', '"', (byte) 0xC3, 0x28, '"', ':', '1', '}'};
    fails(Bytes.file(dir, "latin.safetensors", h.length, h, new byte[0]), "UTF-8", "offset 10");
  }

  @Test
  void unknownDtype() throws IOException {
    fails(
        Bytes.file(dir, "dtype.safetensors", "{" + tensor("w", "F4", "[2]", 0, 1) + "}", 1),
        "tensor 'w'",
        "unknown dtype 'F4'");
    fails(
        Bytes.file(dir, "nodtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1),
        "tensor 'w'",
        "dtype");
  }

  @Test
  void badShapes() throws IOException {
    fails(
        Bytes.file(dir, "neg-shape.safetensors", "{" + tensor("w", "F32", "[2,-1]", 0, 0) + "}", 0),
        "tensor 'w'",
        "shape[1]",
        "-1");
    fails(
        Bytes.file(dir, "frac-shape.safetensors", "{" + tensor("w", "F32", "[2.5]", 0, 8) + "}", 8),
        "tensor 'w'",
        "shape[0]",
        "2.5");
    fails(
        Bytes.file(
            dir, "str-shape.safetensors", "{" + tensor("w", "F32", "[\"2\"]", 0, 8) + "}", 8),
        "shape[0]");
    fails(
        Bytes.file(
            dir,
            "big-shape.safetensors",
            "{" + tensor("w", "F32", "[99999999999999999999]", 0, 8) + "}",
            8),
        "shape[0]");
    fails(
        Bytes.file(
            dir, "no-shape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,0]}}", 0),
        "tensor 'w'",
        "shape");
  }

  @Test
  void shapeProductOverflows() throws IOException {
    fails(
        Bytes.file(
            dir,
            "overflow.safetensors",
            "{" + tensor("w", "F32", "[4294967296,4294967296]", 0, 0) + "}",
            0),
        "tensor 'w'",
        "overflows");
    // numel fits in 64 bits, numel * 8 bytes does not
    fails(
        Bytes.file(
            dir,
            "overflow2.safetensors",
            "{" + tensor("w", "F64", "[2305843009213693952]", 0, 0) + "}",
            0),
        "tensor 'w'",
        "overflows");
  }

  @Test
  void offsetsOutsideTheData() throws IOException {
    fails(
        Bytes.file(dir, "outside.safetensors", "{" + tensor("w", "I32", "[4]", 0, 16) + "}", 8),
        "tensor 'w'",
        "[0, 16]",
        "8 bytes");
    fails(
        Bytes.file(
            dir,
            "far.safetensors",
            "{" + tensor("w", "U8", "[4]", 9223372036854775800L, 9223372036854775804L) + "}",
            8),
        "tensor 'w'",
        "9223372036854775804");
    fails(
        Bytes.file(
            dir,
            "offsets.safetensors",
            "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}",
            1),
        "tensor 'w'",
        "data_offsets");
    fails(
        Bytes.file(dir, "negoff.safetensors", "{" + tensor("w", "U8", "[1]", -1, 0) + "}", 1),
        "tensor 'w'",
        "data_offsets[0]");
  }

  @Test
  void endBeforeBegin() throws IOException {
    fails(
        Bytes.file(dir, "reversed.safetensors", "{" + tensor("w", "F32", "[2]", 8, 0) + "}", 8),
        "tensor 'w'",
        "[8, 0]",
        "end < begin");
  }

  @Test
  void byteLengthMismatch() throws IOException {
    fails(
        Bytes.file(dir, "mismatch.safetensors", "{" + tensor("w", "F32", "[2]", 0, 12) + "}", 12),
        "tensor 'w'",
        "needs 8 bytes",
        "hold 12");
  }

  @Test
  void overlappingTensors() throws IOException {
    fails(
        Bytes.file(
            dir,
            "overlap.safetensors",
            "{" + tensor("a", "F32", "[2]", 0, 8) + "," + tensor("b", "F32", "[2]", 4, 12) + "}",
            12),
        "'b'",
        "overlaps tensor 'a'",
        "[4, 12)");
    fails(
        Bytes.file(
            dir,
            "same.safetensors",
            "{" + tensor("a", "F32", "[2]", 0, 8) + "," + tensor("b", "F32", "[2]", 0, 8) + "}",
            8),
        "overlaps");
  }

  @Test
  void gapsAndTrailingBytesAsTheReference() throws IOException {
    fails(
        Bytes.file(
            dir,
            "gap.safetensors",
            "{" + tensor("a", "F32", "[1]", 0, 4) + "," + tensor("b", "F32", "[1]", 8, 12) + "}",
            12),
        "[4, 8)",
        "tensor 'b'");
    fails(
        Bytes.file(dir, "tail.safetensors", "{" + tensor("a", "F32", "[1]", 0, 4) + "}", 12),
        "12 bytes",
        "cover only 4",
        "'a'");
  }

  @Test
  void badMetadata() throws IOException {
    fails(
        Bytes.file(dir, "meta.safetensors", "{\"__metadata__\":{\"n\":3}}", 0),
        "__metadata__",
        "'n'");
    fails(Bytes.file(dir, "meta2.safetensors", "{\"__metadata__\":[1]}", 0), "__metadata__");
    fails(Bytes.file(dir, "entry.safetensors", "{\"w\":7}", 0), "tensor 'w'", "object");
  }

  @Test
  void missingFileNamesIt() {
    Path p = dir.resolve("absent.safetensors");
    fails(p, "cannot map");
  }

  /** After a failed open the mapping is released: the file can be overwritten and reopened. */
  @Test
  void failedOpenReleasesTheMapping() throws IOException {
    Path p = Bytes.file(dir, "reuse.safetensors", "{" + tensor("w", "F32", "[2]", 0, 12) + "}", 12);
    fails(p, "needs 8 bytes");
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
      ch.truncate(0);
    }
    fails(p, "0 bytes");
  }
}
