package dev.hanlin.data.prepare;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DocumentReaderTest {
  @TempDir Path dir;

  record Doc(String text, long line) {}

  record Read(List<Doc> docs, List<String> bad, long invalidUtf8) {
    List<String> texts() {
      return docs.stream().map(Doc::text).toList();
    }
  }

  /** Writes {@code content} to {@code name} in the temp folder and reads it with {@code LINES}. */
  Read readLines(String name, String content) throws Exception {
    return read(Fixtures.write(dir.resolve(name), content), LINES);
  }

  static Read read(Path p, DocumentReader.Options o) throws Exception {
    List<Doc> docs = new ArrayList<>();
    List<String> bad = new ArrayList<>();
    DocumentReader r = new DocumentReader(p, o);
    r.readAll(
        new DocumentReader.Sink() {
          @Override
          public void document(String text, long line) {
            docs.add(new Doc(text, line));
          }

          @Override
          public void bad(DocumentReader.Bad kind, long line, String detail) {
            bad.add(kind + "@" + line + ": " + detail);
          }
        });
    return new Read(docs, bad, r.invalidUtf8());
  }

  static final DocumentReader.Options LINES = new DocumentReader.Options("text", false, false);

  @Test
  void txtOneDocumentPerLineWithOrWithoutLinebreaks() throws Exception {
    List<String> zh = Fixtures.chinese().subList(0, 5);
    Path p = Fixtures.write(dir.resolve("a.txt"), String.join("\n", zh) + "\n");
    assertEquals(zh, read(p, LINES).texts());
    var keep = read(p, new DocumentReader.Options("text", false, true)).texts();
    assertEquals(zh.getFirst() + "\n", keep.getFirst());
    assertEquals(3, read(p, LINES).docs().get(2).line());
  }

  @Test
  void txtOneDocumentPerFile() throws Exception {
    String all = String.join("\n", Fixtures.english());
    Path p = Fixtures.write(dir.resolve("a.txt"), all);
    assertEquals(List.of(all), read(p, new DocumentReader.Options("text", true, true)).texts());
  }

  @Test
  void jsonlWithConfigurableFieldAndGzip() throws Exception {
    List<String> docs = Fixtures.mixed().subList(0, 10);
    Path p = Fixtures.write(dir.resolve("a.jsonl.gz"), Fixtures.jsonl(docs, "content"));
    assertEquals(docs, read(p, new DocumentReader.Options("content", false, false)).texts());
  }

  @Test
  void jsonArrayOfObjectsJoinsStringArrays() throws Exception {
    Path p = Fixtures.testData().resolve("data/lunyu.json");
    Read r = read(p, new DocumentReader.Options("paragraphs", false, false));
    assertEquals(3, r.docs().size());
    assertTrue(r.texts().getFirst().startsWith("子曰：“学而时习之"));
    assertEquals(16, r.texts().getFirst().split("\n").length);
    assertEquals(2, r.docs().getFirst().line());
    // chapter is a string field too
    assertEquals(
        List.of("学而篇", "为政篇", "八佾篇"),
        read(p, new DocumentReader.Options("chapter", false, false)).texts());
  }

  @Test
  void jsonRootObjectsAndPlainStrings() throws Exception {
    Path p = Fixtures.write(dir.resolve("a.json"), "{\"text\": \"一\"}\n{\"text\": \"二\"}\n");
    assertEquals(List.of("一", "二"), read(p, LINES).texts());
    Path q = Fixtures.write(dir.resolve("b.json"), "[\"one\", \"two\"]");
    assertEquals(List.of("one", "two"), read(q, LINES).texts());
  }

  @Test
  void csvTextColumnQuotesAndMultilineFields() throws Exception {
    List<String> docs = new ArrayList<>(Fixtures.mixed().subList(0, 6));
    docs.add("a \"quoted\", multi-line\nfield");
    Path p = Fixtures.write(dir.resolve("a.csv"), Fixtures.csv(docs));
    Read r = read(p, LINES);
    assertEquals(docs, r.texts());
    assertEquals(2, r.docs().getFirst().line());
  }

  @Test
  void csvWithoutTextColumnUsesTheFirst() throws Exception {
    Path p = Fixtures.write(dir.resolve("a.csv"), "body,n\n甲,1\n乙,2\n");
    assertEquals(List.of("甲", "乙"), read(p, LINES).texts());
  }

  @Test
  void invalidUtf8IsReplacedAndCounted() throws Exception {
    byte[] good = "好\n".getBytes(java.nio.charset.StandardCharsets.UTF_8);
    byte[] bytes = new byte[good.length + 6];
    System.arraycopy(good, 0, bytes, 0, good.length);
    bytes[good.length] = (byte) 0xE4; // truncated 3-byte sequence
    bytes[good.length + 1] = 'a';
    bytes[good.length + 2] = (byte) 0xFF;
    bytes[good.length + 3] = 'b';
    bytes[good.length + 4] = (byte) 0xC3; // lone lead byte at the end
    bytes[good.length + 5] = '\n';
    Path p = Files.write(dir.resolve("bad.txt"), bytes);
    Read r = read(p, LINES);
    assertEquals(List.of("好", "\uFFFDa\uFFFDb\uFFFD"), r.texts());
    assertEquals(3, r.invalidUtf8());
  }

  @Test
  void byteOrderMarkIsDropped() throws Exception {
    Path p = Files.write(dir.resolve("bom.txt"), "\uFEFFhello\n".getBytes("UTF-8"));
    assertEquals(List.of("hello"), read(p, LINES).texts());
  }

  @Test
  void malformedJsonLinesAndMissingFieldsAreReportedWithLines() throws Exception {
    Read r =
        readLines(
            "a.jsonl",
            "{\"text\": \"ok\"}\n{\"text\": \"broken\"\n{\"other\": 1}\n{\"text\": 5}\n"
                + "{\"text\": \"fine\"}\n");
    assertEquals(List.of("ok", "fine"), r.texts());
    assertEquals(3, r.bad().size());
    assertTrue(r.bad().get(0).startsWith("MALFORMED@2"), r.bad().toString());
    assertTrue(r.bad().get(1).startsWith("MISSING_FIELD@3"), r.bad().toString());
    assertTrue(r.bad().get(2).startsWith("MISSING_FIELD@4"), r.bad().toString());
  }

  /** Issue 13 item 5: a second value or stray text after the first one on a line. */
  @Test
  void contentAfterTheFirstJsonValueOnALineIsMalformed() throws Exception {
    Read r =
        readLines(
            "a.jsonl",
            "{\"text\":\"A\"}{\"text\":\"B\"}\n{\"text\":\"x\"} xyz\n{\"text\":\"y\"}  \n"
                + "{\"text\":\"z\"} 7\n");
    assertEquals(List.of("y"), r.texts());
    assertEquals(3, r.bad().size(), r.bad().toString());
    assertEquals(
        "MALFORMED@1: more after the JSON value at column 13 (JSON Lines holds one value per"
            + " line)",
        r.bad().get(0));
    assertTrue(r.bad().get(1).startsWith("MALFORMED@2: "), r.bad().toString());
    assertTrue(
        r.bad().get(2).startsWith("MALFORMED@4: more after the JSON value"), r.bad().toString());
  }

  /** Issue 13 item 9: the first invalid UTF-8 sequence is located by line and byte. */
  @Test
  void firstInvalidUtf8IsLocatedByLineAndByte() throws Exception {
    byte[] head = "好\nfine\nok".getBytes(java.nio.charset.StandardCharsets.UTF_8); // 11 bytes
    byte[] bytes = java.util.Arrays.copyOf(head, head.length + 4);
    bytes[head.length] = (byte) 0xFF;
    bytes[head.length + 1] = '\n';
    bytes[head.length + 2] = (byte) 0xFE;
    bytes[head.length + 3] = '\n';
    for (String name : new String[] {"bad.txt", "bad.txt.gz"}) {
      Path p = dir.resolve(name);
      if (name.endsWith(".gz")) {
        try (var o = new java.util.zip.GZIPOutputStream(Files.newOutputStream(p))) {
          o.write(bytes);
        }
      } else Files.write(p, bytes);
      DocumentReader dr = new DocumentReader(p, LINES);
      List<String> docs = new ArrayList<>();
      dr.readAll(
          new DocumentReader.Sink() {
            @Override
            public void document(String text, long line) {
              docs.add(text);
            }

            @Override
            public void bad(DocumentReader.Bad kind, long line, String detail) {}
          });
      assertEquals(List.of("好", "fine", "ok\uFFFD", "\uFFFD"), docs);
      assertEquals(2, dr.invalidUtf8());
      assertEquals(p + ":3 (byte 11)", dr.firstInvalidUtf8());
    }
    // Past the decoder's 64 KiB buffers too.
    byte[] big = new byte[200_001];
    java.util.Arrays.fill(big, (byte) 'a');
    for (int i = 999; i < big.length; i += 1000) big[i] = '\n';
    big[150_500] = (byte) 0x80;
    Path p = Files.write(dir.resolve("big.txt"), big);
    DocumentReader dr = new DocumentReader(p, LINES);
    dr.readAll(
        new DocumentReader.Sink() {
          @Override
          public void document(String text, long line) {}

          @Override
          public void bad(DocumentReader.Bad kind, long line, String detail) {}
        });
    assertEquals(p + ":151 (byte 150500)", dr.firstInvalidUtf8());
  }

  @Test
  void brokenJsonArrayStopsWithOneMalformedRecord() throws Exception {
    Path p = Fixtures.write(dir.resolve("a.json"), "[{\"text\": \"ok\"},\n{\"text\": oops}]");
    Read r = read(p, LINES);
    assertEquals(List.of("ok"), r.texts());
    assertEquals(1, r.bad().size());
    assertTrue(r.bad().getFirst().startsWith("MALFORMED@2"), r.bad().toString());
  }

  @Test
  void unterminatedCsvQuoteIsMalformed() throws Exception {
    Path p = Fixtures.write(dir.resolve("a.csv"), "text\nfine\n\"never closed\n");
    Read r = read(p, LINES);
    assertEquals(List.of("fine"), r.texts());
    assertTrue(r.bad().getFirst().startsWith("MALFORMED@3"), r.bad().toString());
  }
}
