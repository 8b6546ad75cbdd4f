package dev.hanlin.data.shard;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.DataException;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.io.AtomicFiles;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShardFormatTest {
  @TempDir Path dir;

  private Path write(int vocab, List<int[]> docs) throws Exception {
    Path p = dir.resolve("s" + vocab + ".tok");
    try (ShardWriter w = new ShardWriter(p, ShardFormat.widthFor(vocab), vocab, "fp-1")) {
      for (int[] d : docs) w.add(d);
      w.finish();
    }
    return p;
  }

  @Test
  void roundTripUint16AndUint32WithZeroCopyTensors() throws Exception {
    for (int vocab : new int[] {32000, 70000}) {
      int big = vocab - 1;
      Path p = write(vocab, List.of(new int[] {1, 5, big, 2}, new int[] {1, 7, 2}));
      assertTrue(Files.notExists(AtomicFiles.temp(p)), "no temp file left");
      try (ShardReader r = ShardReader.open(p, "fp-1")) {
        assertEquals(7, r.tokenCount());
        assertEquals(2, r.documentCount());
        assertEquals(vocab <= 65536 ? DType.U16 : DType.U32, r.dtype());
        assertEquals(0, r.documentStart(0));
        assertEquals(4, r.documentStart(1));
        assertEquals(7, r.documentStart(2));
        assertEquals(big, r.token(2));
        Tensor t = r.tokens(1, 4);
        assertArrayEquals(new long[] {5, big, 2, 1}, t.toLongArray());
        r.verify(1, 2);
      }
      assertEquals(
          ShardFormat.fileSize(7, 2, ShardFormat.widthFor(vocab), ShardFormat.CHUNK_BYTES),
          Files.size(p));
    }
  }

  @Test
  void openChecksHeaderAndNamesFileAndOffset() throws Exception {
    Path p = write(32000, List.of(new int[] {1, 5, 2}));
    try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
      f.seek(16);
      f.write(9); // token count
    }
    var e = assertThrows(DataException.class, () -> ShardReader.open(p, null));
    assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("header checksum mismatch"), e.getMessage());
  }

  @Test
  void openRejectsTruncatedAndForeignFiles() throws Exception {
    Path p = write(32000, List.of(new int[] {1, 5, 6, 2}));
    try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
      f.setLength(f.length() - 8);
    }
    var e = assertThrows(DataException.class, () -> ShardReader.open(p, null));
    assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    Path junk = Files.write(dir.resolve("junk.tok"), new byte[300]);
    e = assertThrows(DataException.class, () -> ShardReader.open(junk, null));
    assertTrue(e.getMessage().contains("magic"), e.getMessage());
  }

  @Test
  void verifyFindsFlippedTokenThatOpenDoesNotRead() throws Exception {
    Path p = write(32000, List.of(new int[] {1, 5, 6, 2}));
    try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
      f.seek(ShardFormat.HEADER_BYTES + 2);
      f.write(77);
    }
    try (ShardReader r = ShardReader.open(p, null)) {
      var e = assertThrows(DataException.class, () -> r.verify(1, 2));
      assertTrue(e.getMessage().contains("data checksum mismatch"), e.getMessage());
    }
  }

  @Test
  void openChecksTheDocumentIndexChecksum() throws Exception {
    Path p = write(32000, List.of(new int[] {1, 5, 6, 2}, new int[] {1, 2}));
    try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
      f.seek(ShardFormat.indexOffset(6, 2) + 8);
      f.write(3); // document 1 now starts at token 3
    }
    var e = assertThrows(DataException.class, () -> ShardReader.open(p, null));
    assertTrue(e.getMessage().contains("document index checksum mismatch"), e.getMessage());
  }

  @Test
  void fingerprintMismatchIsAnError() throws Exception {
    Path p = write(32000, List.of(new int[] {1, 2}));
    var e = assertThrows(DataException.class, () -> ShardReader.open(p, "other"));
    assertTrue(e.getMessage().contains("fp-1") && e.getMessage().contains("other"));
  }

  @Test
  void unfinishedWriterLeavesNothing() throws Exception {
    Path p = dir.resolve("x.tok");
    try (ShardWriter w = new ShardWriter(p, 2, 100, "fp")) {
      w.add(new int[] {1, 2});
    }
    assertTrue(Files.notExists(p));
    assertTrue(Files.notExists(AtomicFiles.temp(p)));
  }
}
