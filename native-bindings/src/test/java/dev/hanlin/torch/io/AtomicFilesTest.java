package dev.hanlin.torch.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {
  @TempDir Path dir;

  private List<String> names() throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void writesAndReplacesLeavingNoTemporary() throws IOException {
    Path f = dir.resolve("a.json");
    AtomicFiles.writeString(f, "one 春风");
    assertEquals("one 春风", Files.readString(f));
    AtomicFiles.write(f, new byte[] {1, 2, 3});
    assertEquals(3, Files.size(f));
    assertEquals(List.of("a.json"), names());
  }

  /** A body that fails part-way leaves the old file whole and no temporary behind. */
  @Test
  void failedBodyKeepsTheOldFile() throws IOException {
    Path f = dir.resolve("a.json");
    AtomicFiles.writeString(f, "old");
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                AtomicFiles.write(
                    f,
                    ch -> {
                      AtomicFiles.writeFully(ch, java.nio.ByteBuffer.wrap(new byte[] {'n', 'e'}));
                      throw new IOException("disk full");
                    }));
    assertEquals("disk full", e.getMessage());
    assertEquals("old", Files.readString(f));
    assertEquals(List.of("a.json"), names());
  }

  @Test
  void commitsAFolderOverAnEmptyOne() throws IOException {
    Path tmp = Files.createDirectories(dir.resolve(".out.tmp"));
    AtomicFiles.writeSynced(tmp.resolve("x.txt"), "x");
    Files.createDirectories(dir.resolve("out"));
    AtomicFiles.commit(tmp, dir.resolve("out"));
    assertEquals("x", Files.readString(dir.resolve("out/x.txt")));
    assertFalse(Files.exists(tmp));
    assertTrue(Files.isDirectory(dir.resolve("out")));
  }

  @Test
  void customTemporaryNameIsUsedAndRemoved() throws IOException {
    Path f = dir.resolve("m.safetensors");
    Path tmp = dir.resolve(".m.safetensors.1234.tmp");
    AtomicFiles.write(f, tmp, ch -> assertTrue(Files.exists(tmp), "writing through " + tmp));
    assertEquals(List.of("m.safetensors"), names());
  }
}
