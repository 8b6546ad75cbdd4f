package dev.hanlin.data.sft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.DataException;
import dev.hanlin.data.Fixtures;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SFT takes every input form that {@code --mode prepare} takes, because both read through {@code
 * DocumentReader} and {@code Sources}: gzipped files, globs, folders, CSV manifests and txt lines.
 * Each form must give exactly the examples of the same records in a plain .jsonl file.
 */
class SftInputFormsTest {
  final Tokenizer bytes = new Fixtures.ByteTokenizer();
  @TempDir Path tmp;

  static final String R1 = "{\"input\": \"hi\", \"target\": \"ok\"}\n";
  static final String R2 = "{\"input\": \"你好\", \"target\": \"好\"}\n";
  static final String R3 = "{\"input\": \"a,b\", \"target\": \"c\\nd\"}\n";
  List<SftExample> expected;

  @BeforeEach
  void reference() throws IOException {
    Path plain = Fixtures.write(tmp.resolve("ref/all.jsonl"), R1 + R2 + R3);
    expected = load(List.of(plain)).examples();
    assertEquals(3, expected.size());
  }

  SftDataset load(List<Path> files) throws IOException {
    return SftDataset.load(files, bytes, SftOptions.DEFAULT, 64);
  }

  void assertSame(List<SftExample> want, SftDataset got) {
    assertEquals(want.size(), got.size());
    for (int i = 0; i < want.size(); i++) {
      assertArrayEquals(want.get(i).ids(), got.get(i).ids(), "ids of " + i);
      assertArrayEquals(want.get(i).labels(), got.get(i).labels(), "labels of " + i);
    }
  }

  static Path gzip(Path p, String content) throws IOException {
    Files.createDirectories(p.getParent());
    try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(p))) {
      o.write(content.getBytes(StandardCharsets.UTF_8));
    }
    return p;
  }

  @Test
  void gzippedJsonl() throws IOException {
    assertSame(expected, load(List.of(gzip(tmp.resolve("d/a.jsonl.gz"), R1 + R2 + R3))));
  }

  @Test
  void globInFileNameOrder() throws IOException {
    Fixtures.write(tmp.resolve("g/part-2.jsonl"), R3);
    Fixtures.write(tmp.resolve("g/part-0.jsonl"), R1);
    gzip(tmp.resolve("g/part-1.jsonl.gz"), R2);
    Fixtures.write(tmp.resolve("g/other.json"), "[" + R1.strip() + "]");
    assertSame(expected, load(List.of(tmp.resolve("g/part-*"))));
  }

  @Test
  void folderInSortedOrderSkippingHiddenAndOtherFiles() throws IOException {
    Fixtures.write(tmp.resolve("f/a.jsonl"), R1);
    Fixtures.write(tmp.resolve("f/b/c.json"), "[" + R2.strip() + ",\n" + R3.strip() + "]");
    Fixtures.write(tmp.resolve("f/.hidden.jsonl"), "not json\n");
    Fixtures.write(tmp.resolve("f/notes.md"), "not data\n");
    assertSame(expected, load(List.of(tmp.resolve("f"))));
  }

  @Test
  void csvDataWithQuotedMultiLineCellAndCsvManifest() throws IOException {
    Path data =
        Fixtures.write(
            tmp.resolve("c/data.csv"), "\uFEFFinput,target\nhi,ok\n你好,好\n\"a,b\",\"c\nd\"\n");
    assertSame(expected, load(List.of(data)));
    // Llama2-Chinese lists its files in a CSV with a file_name column, relative to the manifest
    Fixtures.write(tmp.resolve("c/one.jsonl"), R1);
    Fixtures.write(tmp.resolve("c/sub/two.jsonl"), R2 + R3);
    Path manifest = Fixtures.write(tmp.resolve("c/list.csv"), "file_name\none.jsonl\nsub\n");
    assertSame(expected, load(List.of(manifest)));
  }

  @Test
  void txtLinesAreTextRecords() throws IOException {
    Path t = Fixtures.write(tmp.resolve("t/a.txt"), "hello\n\n世界\n");
    SftDataset d = SftDataset.load(List.of(t), bytes, SftOptions.DEFAULT.withFormat("text"), 64);
    assertEquals(2, d.size(), "the blank line is skipped");
    // format text trains every token: "hello" = 5 bytes between BOS and EOS
    assertEquals(7, d.get(0).length());
    assertEquals(6, d.get(0).trainedTokens());
  }

  @Test
  void aRaggedCsvRowAndABadGlobNameWhere() throws IOException {
    Path bad = Fixtures.write(tmp.resolve("r/bad.csv"), "input,target\nx,y\nx,y,z\n");
    DataException e = assertThrows(DataException.class, () -> load(List.of(bad)));
    assertTrue(e.getMessage().contains("bad.csv:3: 3 fields, the header has 2"), e.getMessage());
    Path open = Fixtures.write(tmp.resolve("r/open.csv"), "input,target\nx,y\n\"never closed,z\n");
    e = assertThrows(DataException.class, () -> load(List.of(open)));
    assertTrue(
        e.getMessage().contains("open.csv:3: unterminated quoted field starting on line 3"),
        e.getMessage());
    IOException none =
        assertThrows(IOException.class, () -> load(List.of(tmp.resolve("r/*.jsonl"))));
    assertTrue(none.getMessage().contains("matches no file"), none.getMessage());
  }
}
