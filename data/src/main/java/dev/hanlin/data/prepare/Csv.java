package dev.hanlin.data.prepare;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.dataformat.csv.CsvFactory;
import com.fasterxml.jackson.dataformat.csv.CsvParser;
import java.io.IOException;
import java.io.Reader;
import java.util.ArrayList;
import java.util.List;

/**
 * CSV records as lists of fields, parsed by jackson-dataformat-csv (RFC 4180: comma-separated,
 * double quotes around fields that hold commas, quotes ({@code ""}) or line breaks), with the line
 * each record starts on, for error messages. An empty line is one empty field; a trailing comma is
 * one more, empty field.
 */
final class Csv {
  // No schema: each record comes as an array of strings, header included; the trailing-comma
  // leniency is off so that "a,b," has three fields, as RFC 4180 reads it.
  private static final CsvFactory FACTORY =
      CsvFactory.builder().disable(CsvParser.Feature.ALLOW_TRAILING_COMMA).build();

  private final CsvParser parser;
  private long recordLine;

  /** A syntax error that leaves no safe place to resume. */
  static final class MalformedCsv extends IOException {
    MalformedCsv(String message) {
      super(message);
    }
  }

  Csv(Reader in) throws IOException {
    this.parser = FACTORY.createParser(in);
  }

  /** The line on which the last record returned by {@link #next()} started (1-based). */
  long recordLine() {
    return recordLine;
  }

  /** The next record's fields, or null at the end of input. */
  List<String> next() throws IOException {
    try {
      recordLine = parser.currentLocation().getLineNr();
      JsonToken t = parser.nextToken();
      if (t == null) return null;
      recordLine = parser.currentLocation().getLineNr();
      List<String> fields = new ArrayList<>();
      while (parser.nextToken() == JsonToken.VALUE_STRING) fields.add(parser.getText());
      return fields;
    } catch (JsonProcessingException e) {
      String why = e.getOriginalMessage();
      throw new MalformedCsv(
          why.startsWith("Missing closing quote")
              ? "unterminated quoted field starting on line " + recordLine
              : "record starting on line " + recordLine + ": " + why);
    }
  }
}
