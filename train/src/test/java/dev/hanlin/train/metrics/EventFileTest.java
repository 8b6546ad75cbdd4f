package dev.hanlin.train.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EventFileTest {
  private static final double WALL = 1700000000.5;

  // Golden records printed by test-data/metrics/golden_record.py with TensorBoard 2.21.0's own
  // protobufs and RecordWriter.
  private static final String GOLDEN_FILE_VERSION =
      "1800000000000000a37f4b220900002040fc54d9411a0d627261696e2e4576656e743a322b353110";
  private static final String GOLDEN_SCALAR =
      "200000000000000029eda9500900002040fc54d941102a2a130a110a0a747261696e2f6c6f73731500002040504bff3f";
  private static final String GOLDEN_ZERO =
      "1f00000000000000514b44180900002040fc54d94110072a120a100a09747261696e2f6d66751500000000b4b936bf";
  private static final String GOLDEN_SESSION_START =
      "0f000000000000006d532b090900002040fc54d94110653a0208014da449a8";

  private static byte[] hex(String s) {
    return HexFormat.of().parseHex(s);
  }

  @Test
  void crc32cMatchesRfc3720Vectors() {
    byte[] buf = new byte[32];
    assertEquals(0x8a9136aaL, crc(buf));
    java.util.Arrays.fill(buf, (byte) 0xff);
    assertEquals(0x62a8ab43L, crc(buf));
    for (int i = 0; i < 32; i++) buf[i] = (byte) i;
    assertEquals(0x46dd794eL, crc(buf));
    for (int i = 0; i < 32; i++) buf[i] = (byte) (31 - i);
    assertEquals(0x113fdb5cL, crc(buf));
  }

  @Test
  void maskIsTfRecordsRotateAndAdd() {
    int crc = 0x8a9136aa;
    int unmaskedBack = Integer.rotateLeft(EventFile.mask(crc) - 0xa282ead8, 15);
    assertEquals(crc, unmaskedBack);
    assertEquals(Integer.rotateRight(crc, 15) + 0xa282ead8, EventFile.mask(crc));
  }

  @Test
  void recordsMatchTensorBoardsOwnBytes() {
    assertArrayEquals(hex(GOLDEN_FILE_VERSION), EventFile.record(EventFile.fileVersionEvent(WALL)));
    assertArrayEquals(
        hex(GOLDEN_SCALAR),
        EventFile.record(EventFile.scalarsEvent(WALL, 42, Map.of("train/loss", 2.5f))));
    assertArrayEquals(
        hex(GOLDEN_ZERO),
        EventFile.record(EventFile.scalarsEvent(WALL, 7, Map.of("train/mfu", 0f))));
    assertArrayEquals(
        hex(GOLDEN_SESSION_START), EventFile.record(EventFile.sessionStartEvent(WALL, 101)));
  }

  @Test
  void readerChecksCrcs() {
    byte[] good = hex(GOLDEN_SCALAR);
    assertEquals(1, EventFileReader.records(good, "golden").size());
    assertRejectsFlippedByte(good, 20, "data crc");
    assertRejectsFlippedByte(good, 8, "length crc");
  }

  /**
   * Flipping one bit of byte {@code at} makes the reader fail with a message naming {@code crc}.
   */
  private static void assertRejectsFlippedByte(byte[] good, int at, String crc) {
    byte[] bad = good.clone();
    bad[at] ^= 1;
    String message =
        assertThrows(IllegalStateException.class, () -> EventFileReader.records(bad, "x"))
            .getMessage();
    assertTrue(message.contains(crc), message);
  }

  @Test
  void listenerRoundTrip(@TempDir Path out) throws IOException {
    double[] clock = {WALL};
    TensorBoardListener tb = new TensorBoardListener(() -> clock[0], "testhost");
    tb.onStart(new RunInfo("t", 3, 0, out, Double.NaN, 1e9));
    Path file = tb.file();
    assertEquals(out.resolve("runs/events.out.tfevents.1700000000.testhost"), file);
    for (int s = 1; s <= 3; s++) {
      clock[0] += 1;
      double loss = s == 2 ? Double.NaN : 10.0 / s;
      tb.onStep(new StepMetrics(s, 3, loss, 1e-4 * s, 0.5, 4096, 0.25, 16384, Double.NaN, s == 2));
    }
    tb.onEval(EvalMetrics.of(3, 2.0, 0.375, 1000));
    tb.onEnd();

    List<EventFileReader.Event> ev = EventFileReader.read(file);
    assertEquals(5, ev.size());
    assertEquals("brain.Event:2", ev.get(0).fileVersion());
    assertEquals(WALL, ev.get(0).wallTime());
    assertEquals(0, ev.get(0).step());
    assertTrue(ev.get(0).values().isEmpty());

    EventFileReader.Event s1 = ev.get(1);
    assertEquals(1, s1.step());
    assertEquals(WALL + 1, s1.wallTime());
    Map<String, Float> want = new LinkedHashMap<>();
    want.put("train/loss", 10f);
    want.put("train/lr", 1e-4f);
    want.put("train/grad_norm", 0.5f);
    want.put("train/tokens_per_second", 16384f);
    assertEquals(want, s1.values()); // MFU unknown on CPU: left out
    assertNull(ev.get(2).values().get("train/loss")); // skipped step: no loss point
    assertEquals(2e-4f, ev.get(2).values().get("train/lr"));
    assertEquals((float) (10.0 / 3), ev.get(3).values().get("train/loss"));

    EventFileReader.Event e = ev.get(4);
    assertEquals(3, e.step());
    assertEquals(2f, e.values().get("eval/loss"));
    assertEquals((float) Math.exp(2.0), e.values().get("eval/perplexity"));
    assertEquals(0.375f, e.values().get("eval/accuracy"));
  }

  @Test
  void resumedRunStartsWithSessionStartAndANewFile(@TempDir Path out) throws IOException {
    TensorBoardListener first = new TensorBoardListener(() -> WALL, "h");
    first.onStart(new RunInfo("t", 10, 0, out, 989e12, 1e9));
    first.onStep(new StepMetrics(1, 10, 3, 1e-3, 1, 10, 1, 10, 0.4, false));
    // killed: no onEnd
    TensorBoardListener second = new TensorBoardListener(() -> WALL, "h");
    second.onStart(new RunInfo("t", 10, 5, out, 989e12, 1e9));
    second.onEnd();
    assertTrue(Files.exists(out.resolve("runs/events.out.tfevents.1700000000.h")));
    Path file = out.resolve("runs/events.out.tfevents.1700000000.h.1");
    assertEquals(file, second.file());
    List<EventFileReader.Event> ev = EventFileReader.read(file);
    assertEquals(2, ev.size());
    assertEquals(EventFile.SESSION_START, ev.get(1).sessionStatus());
    assertEquals(6, ev.get(1).step());
    assertEquals(
        0.4f,
        EventFileReader.read(out.resolve("runs/events.out.tfevents.1700000000.h"))
            .get(1)
            .values()
            .get("train/mfu"));
  }

  private static long crc(byte[] b) {
    CRC32C c = new CRC32C();
    c.update(b);
    return c.getValue();
  }
}
