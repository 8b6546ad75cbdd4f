package dev.hanlin.data.shard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.hanlin.data.DataException;
import dev.hanlin.data.FuzzFiles;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzes the token shard reader: header, document index, and what training reads from a shard that
 * opened (tokens, document starts, the zero-copy tensor view). Each input is tried as is and again
 * with its three CRC32C fields recomputed, so mutations also reach the checks behind the checksums.
 * Seeds: src/test/resources/dev/hanlin/data/shard/ShardFuzzTestInputs
 * (test-data/fuzz/make_seeds.py). A finding is anything but a DataException or IOException, a hang,
 * or a crash.
 */
class ShardFuzzTest {

  /** Loads libtorch before the first input, whose per-input timeout is not meant for that. */
  @BeforeAll
  static void loadLibtorch() {
    try (Scope s = Scope.open()) {
      Torch.zeros(DType.F32, Device.CPU, 1).sum();
    }
  }

  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  @FuzzTest(maxDuration = "30s")
  void shard(byte[] bytes) throws Exception {
    FuzzFiles.onTempFile(
        ".tok",
        bytes,
        file -> {
          read(file);
          byte[] fixed = withChecksums(bytes);
          if (fixed != null) {
            Files.write(file, fixed);
            read(file);
          }
        });
  }

  private static void read(Path file) throws IOException {
    ShardReader r;
    try {
      r = ShardReader.open(file, null);
    } catch (DataException | IOException e) {
      return; // the reader's own errors
    }
    try (r;
        Scope s = Scope.open()) {
      // what the loaders do with a shard that opened, before or without verify; since version 2
      // a read checks its chunk's CRC and ids first, so a DataException here is the reader's own
      try {
        for (long d = 0; d <= r.documentCount(); d++) r.documentStart(d);
        for (long i = 0; i < r.tokenCount(); i++) r.token(i);
        if (r.tokenCount() > 0) r.tokens(0, r.tokenCount()).sum();
      } catch (DataException e) {
        // a corrupt chunk, named
      }
      try {
        r.verify(1, 2);
      } catch (DataException e) {
        // expected for most mutations
      }
    }
  }

  /**
   * The input with its CRC32C fields recomputed — for version 2 the chunk CRCs and the chunk
   * table's, then the index, data and header CRCs (offsets from the layout in ShardFormat) — or
   * null when it is too short. Fields whose offsets point outside the input are left alone.
   */
  static byte[] withChecksums(byte[] in) {
    if (in.length < 256) return null;
    byte[] b = in.clone();
    ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    int width = h.getInt(12);
    long tokens = h.getLong(16);
    long documents = h.getLong(24);
    long indexOffset = h.getLong(48);
    int chunk = h.getInt(136);
    long tableOffset = h.getLong(144);
    if (h.getInt(8) == 2 && (width == 2 || width == 4) && chunk > 0 && chunk % 4 == 0) {
      long dataBytes = tokens * width;
      long chunks = tokens < 0 || dataBytes > b.length ? -1 : (dataBytes + chunk - 1) / chunk;
      if (chunks >= 0
          && 256 + dataBytes <= b.length
          && tableOffset >= 256
          && tableOffset + 4 * chunks <= b.length) {
        for (long c = 0; c < chunks; c++) {
          int from = (int) (256 + c * chunk);
          int len = (int) Math.min(chunk, dataBytes - c * chunk);
          h.putInt((int) (tableOffset + 4 * c), crc(b, from, len));
        }
        h.putInt(140, crc(b, (int) tableOffset, (int) (4 * chunks)));
      }
    }
    if (documents >= 0
        && documents < b.length
        && indexOffset >= 256
        && indexOffset + 8 * (documents + 1) <= b.length) {
      h.putInt(36, crc(b, (int) indexOffset, (int) (8 * (documents + 1))));
    }
    h.putInt(64, crc(b, 256, b.length - 256));
    h.putInt(68, 0);
    h.putInt(68, crc(b, 0, 256));
    return b;
  }

  private static int crc(byte[] b, int off, int len) {
    CRC32C c = new CRC32C();
    c.update(b, off, len);
    return (int) c.getValue();
  }

  /** The valid seeds (written by make_seeds.py to the documented layout) open and verify. */
  @Test
  void validSeedsVerify() throws Exception {
    Path dir = Path.of("src/test/resources/dev/hanlin/data/shard/ShardFuzzTestInputs/shard");
    try (ShardReader r = ShardReader.open(dir.resolve("three_docs_u16.tok"), null)) {
      r.verify(1, 2);
      assertEquals(13, r.tokenCount());
      assertEquals(3, r.documentCount());
    }
    try (ShardReader r = ShardReader.open(dir.resolve("three_docs_u16_v1.tok"), null)) {
      r.verify(1, 2); // version 1, still read
      assertEquals(13, r.tokenCount());
    }
    try (ShardReader r = ShardReader.open(dir.resolve("one_doc_u32.tok"), null)) {
      r.verify(1, 2);
      assertEquals(70000, r.token(1));
    }
    try (ShardReader r = ShardReader.open(dir.resolve("token_over_vocab.tok"), null)) {
      DataException e = assertThrows(DataException.class, () -> r.verify(1, 2));
      assertTrue(e.getMessage().contains("vocabulary size 32"), e.getMessage());
    }
  }
}
