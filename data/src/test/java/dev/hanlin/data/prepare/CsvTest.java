package dev.hanlin.data.prepare;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The CSV behaviour prepare, manifests and SFT rely on, pinned when the hand-written parser gave
 * way to jackson-dataformat-csv (this test passed against both): RFC 4180 quoting, multi-line
 * cells, the line each record starts on, empty lines and trailing commas as empty fields.
 */
class CsvTest {
  /** Each record as "line:fields". */
  static List<String> read(String csv) throws IOException {
    Csv c = new Csv(new StringReader(csv));
    List<String> out = new ArrayList<>();
    for (List<String> r; (r = c.next()) != null; ) out.add(c.recordLine() + ":" + r);
    return out;
  }

  @Test
  void quotedFieldsMultiLineCellsAndTheirLines() throws IOException {
    assertEquals(
        List.of(
            "1:[id, text]",
            "2:[1, 子曰，\"学而时习之\"]",
            "3:[2, two\nlines, and, commas]",
            "5:[3, plain]"),
        read("id,text\n1,\"子曰，\"\"学而时习之\"\"\"\n2,\"two\nlines, and\",commas\n3,plain"));
  }

  @Test
  void crlfEmptyLinesTrailingCommasAndSpacesAreKept() throws IOException {
    assertEquals(
        List.of("1:[a, b]", "2:[]", "3:[ x , ]", "4:[, ]", "5:[\"\"]"),
        read("a,b\r\n\r\n x ,\r\n,\n\"\"\"\"\"\"\n"));
    assertEquals(List.of(1), List.of(new Csv(new StringReader("\n")).next().size()));
    assertEquals(List.of(), read(""));
  }

  @Test
  void anUnterminatedQuoteNamesTheLineItStartsOn() throws IOException {
    Csv c = new Csv(new StringReader("text\nfine\n\"never closed\nmore\n"));
    c.next();
    c.next();
    Csv.MalformedCsv e = assertThrows(Csv.MalformedCsv.class, c::next);
    assertEquals("unterminated quoted field starting on line 3", e.getMessage());
    assertEquals(3, c.recordLine());
  }
}
