package dev.hanlin.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
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
 * Seeds: src/test/resources/dev/hanlin/data/ShardFuzzTestInputs (test-data/fuzz/make_seeds.py). A
 * finding is anything but a DataException or IOException, a hang, or a crash.
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
    Path file = Files.createTempFile("fuzz", ".tok");
    try {
      Files.write(file, bytes);
      read(file);
      byte[] fixed = withChecksums(bytes);
      if (fixed != null) {
        Files.write(file, fixed);
        read(file);
      }
    } finally {
      Files.deleteIfExists(file);
    }
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
      // what the loaders do with a shard that opened, before or without verify
      for (long d = 0; d <= r.documentCount(); d++) r.documentStart(d);
      for (long i = 0; i < r.tokenCount(); i++) r.token(i);
      if (r.tokenCount() > 0) r.tokens(0, r.tokenCount()).sum();
      try {
        r.verify(1, 2);
      } catch (DataException e) {
        // expected for most mutations
      }
    }
  }

  /**
   * The input with the data, index and header CRC32C fields recomputed (offsets from the layout in
   * ShardFormat), or null when it is too short or its offsets point outside it.
   */
  static byte[] withChecksums(byte[] in) {
    if (in.length < 256) return null;
    byte[] b = in.clone();
    ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    long documents = h.getLong(24);
    long indexOffset = h.getLong(48);
    h.putInt(64, crc(b, 256, b.length - 256));
    if (documents >= 0
        && documents < b.length
        && indexOffset >= 256
        && indexOffset + 8 * (documents + 1) <= b.length) {
      h.putInt(36, crc(b, (int) indexOffset, (int) (8 * (documents + 1))));
    }
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
    Path dir = Path.of("src/test/resources/dev/hanlin/data/ShardFuzzTestInputs/shard");
    try (ShardReader r = ShardReader.open(dir.resolve("three_docs_u16.tok"), null)) {
      r.verify(1, 2);
      assertEquals(13, r.tokenCount());
      assertEquals(3, r.documentCount());
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
