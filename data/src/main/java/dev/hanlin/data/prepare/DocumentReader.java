package dev.hanlin.data.prepare;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hanlin.data.DataException;
import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PushbackReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * Reads the documents of one input file in any {@link InputFormat}, optionally gzipped, and hands
 * each to a {@link Sink} with the line it starts on. Records that cannot give a document (malformed
 * JSON, a missing text field) go to {@link Sink#bad}; invalid UTF-8 is replaced and counted.
 */
public final class DocumentReader {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * How documents are cut out of files.
   *
   * @param textField the JSON field or CSV column with the text
   * @param txtDocumentPerFile a .txt file is one document (else one per line)
   * @param keepLinebreaks with one document per line, keep each line's newline
   */
  public record Options(String textField, boolean txtDocumentPerFile, boolean keepLinebreaks) {
    /** As {@code --mode prepare} does by default: field {@code text}, lines, newlines kept. */
    public static final Options DEFAULT = new Options("text", false, true);
  }

  /** Why a record gave no document. */
  enum Bad {
    MALFORMED,
    MISSING_FIELD
  }

  /** Receives documents in file order. */
  interface Sink {
    /** A document (possibly empty) that starts on {@code line}. */
    void document(String text, long line) throws IOException;

    /** A record on {@code line} that gave no document. */
    void bad(Bad kind, long line, String detail);
  }

  /**
   * Receives whole records, for SFT: a JSON value (jsonl, json), a CSV row as an object of its
   * header's columns, or a txt line as an object with the text field.
   */
  public interface RecordSink {
    void record(JsonNode value, long line) throws IOException;
  }

  /** Counts the raw (possibly compressed) bytes read, for progress and MB/s. */
  static final class CountingStream extends FilterInputStream {
    long count;

    CountingStream(InputStream in) {
      super(in);
    }

    @Override
    public int read() throws IOException {
      int b = super.read();
      if (b >= 0) count++;
      return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      int n = super.read(b, off, len);
      if (n > 0) count += n;
      return n;
    }
  }

  private final Path path;
  private final InputFormat format;
  private final Options options;
  private final CountingStream raw;
  private final Utf8Reader text;

  public DocumentReader(Path path, Options options) throws IOException {
    this.path = path;
    this.format = InputFormat.of(path);
    if (format == null) {
      throw new IOException(
          "unsupported input format: " + path + " (txt, jsonl, json, csv, optionally .gz)");
    }
    this.options = options;
    this.raw = new CountingStream(Files.newInputStream(path));
    InputStream in = new BufferedInputStream(raw, 1 << 16);
    if (InputFormat.isGzip(path)) in = new GZIPInputStream(in, 1 << 16);
    this.text = new Utf8Reader(in);
  }

  /** Raw bytes read so far. */
  long bytesRead() {
    return raw.count;
  }

  /** Malformed UTF-8 sequences replaced so far. */
  long invalidUtf8() {
    return text.invalidSequences();
  }

  /**
   * Where the first malformed UTF-8 sequence was, as {@code "path:line (byte N)"}, or null if none
   * so far; the byte offset counts decompressed bytes for a gzipped file.
   */
  String firstInvalidUtf8() {
    if (text.invalidSequences() == 0) return null;
    return path + ":" + text.firstInvalidLine() + " (byte " + text.firstInvalidByte() + ")";
  }

  /** Reads every document into {@code sink}, then closes the file. */
  void readAll(Sink sink) throws IOException {
    try (text) {
      switch (format) {
        case TXT -> readTxt(sink);
        case JSONL -> readJsonLines(new BufferedReader(text, 1 << 16), sink);
        case JSON -> readJson(sink);
        case CSV -> readCsv(sink);
      }
    }
  }

  /**
   * Reads every record into {@code sink}, strictly (SFT trains on records as they are): the first
   * malformed record, ragged CSV row or invalid UTF-8 is a {@link DataException} naming file:line;
   * blank lines are skipped. Closes the file.
   */
  public void readRecords(RecordSink sink) throws IOException {
    try (text) {
      switch (format) {
        case TXT -> {
          BufferedReader r = new BufferedReader(text, 1 << 16);
          long line = 0;
          for (String s; (s = r.readLine()) != null; ) {
            line++;
            strictUtf8();
            if (!s.isBlank())
              sink.record(JSON.createObjectNode().put(options.textField(), s), line);
          }
        }
        case JSONL -> {
          BufferedReader r = new BufferedReader(text, 1 << 16);
          long line = 0;
          for (String s; (s = r.readLine()) != null; ) {
            line++;
            strictUtf8();
            if (s.isBlank()) continue;
            JsonLine v = jsonLine(s);
            if (v.problem() != null) throw bad(line, "malformed JSON: " + v.problem());
            sink.record(v.node(), line);
          }
        }
        case JSON -> {
          String problem =
              readJson(
                  (node, line) -> {
                    strictUtf8();
                    sink.record(node, line);
                  });
          strictUtf8();
          if (problem != null) throw bad(lastJsonLine, "malformed JSON: " + problem);
        }
        case CSV -> readCsvRecords(sink);
      }
    }
  }

  private void readCsvRecords(RecordSink sink) throws IOException {
    Csv csv = new Csv(text);
    List<String> header = strictRow(csv);
    if (header == null) return;
    for (List<String> row; (row = strictRow(csv)) != null; ) {
      if (row.size() == 1 && row.getFirst().isEmpty()) continue;
      if (row.size() != header.size())
        throw bad(csv.recordLine(), row.size() + " fields, the header has " + header.size());
      ObjectNode o = JSON.createObjectNode();
      for (int i = 0; i < header.size(); i++) o.put(header.get(i), row.get(i));
      sink.record(o, csv.recordLine());
    }
  }

  private List<String> strictRow(Csv csv) throws IOException {
    try {
      List<String> row = csv.next();
      strictUtf8();
      return row;
    } catch (Csv.MalformedCsv e) {
      throw bad(csv.recordLine(), e.getMessage());
    }
  }

  private DataException bad(long line, String what) {
    return new DataException(path + ":" + line + ": " + what);
  }

  /** Invalid UTF-8 so far is an error naming where it starts (strict reading only). */
  private void strictUtf8() {
    if (text.invalidSequences() > 0)
      throw bad(
          text.firstInvalidLine(),
          "invalid UTF-8 at byte "
              + text.firstInvalidByte()
              + (InputFormat.isGzip(path) ? " (uncompressed)" : "")
              + "; save the file as UTF-8");
  }

  private void readTxt(Sink sink) throws IOException {
    if (options.txtDocumentPerFile()) {
      StringBuilder all = new StringBuilder();
      char[] b = new char[1 << 16];
      for (int n; (n = text.read(b)) > 0; ) all.append(b, 0, n);
      sink.document(all.toString(), 1);
      return;
    }
    BufferedReader r = new BufferedReader(text, 1 << 16);
    long line = 0;
    for (String s; (s = r.readLine()) != null; ) {
      line++;
      sink.document(options.keepLinebreaks() ? s + "\n" : s, line);
    }
  }

  private void readJsonLines(BufferedReader r, Sink sink) throws IOException {
    long line = 0;
    for (String s; (s = r.readLine()) != null; ) {
      line++;
      if (s.isBlank()) {
        sink.document("", line);
        continue;
      }
      JsonLine v = jsonLine(s);
      if (v.problem() != null) sink.bad(Bad.MALFORMED, line, v.problem());
      else record(v.node(), line, sink);
    }
  }

  /** One JSON Lines line: its value, or what is wrong with it. */
  private record JsonLine(JsonNode node, String problem) {}

  private static JsonLine jsonLine(String s) throws IOException {
    try (JsonParser p = JSON.createParser(s)) {
      JsonNode node = p.readValueAsTree();
      // One value per line: anything after it (a second record, stray text) would otherwise be
      // dropped without a word.
      if (p.nextToken() != null) {
        return new JsonLine(
            null,
            "more after the JSON value at column "
                + p.currentTokenLocation().getColumnNr()
                + " (JSON Lines holds one value per line)");
      }
      return new JsonLine(node, null);
    } catch (JsonProcessingException e) {
      return new JsonLine(null, e.getOriginalMessage());
    }
  }

  private void readJson(Sink sink) throws IOException {
    String problem = readJson((node, line) -> record(node, line, sink));
    // A syntax error inside one JSON document leaves no safe place to resume.
    if (problem != null)
      sink.bad(Bad.MALFORMED, lastJsonLine, problem + " (rest of the file skipped)");
  }

  private long lastJsonLine;

  /**
   * The values of a JSON file (a root array's elements, or a sequence of root values) into {@code
   * sink}; the syntax error that stopped it, or null ({@link #lastJsonLine} says where).
   */
  private String readJson(RecordSink sink) throws IOException {
    PushbackReader pr = new PushbackReader(text, 1);
    int c;
    do {
      c = pr.read();
    } while (c >= 0 && Character.isWhitespace(c));
    if (c < 0) return null;
    pr.unread(c);
    JsonParser p = new JsonFactory(JSON).createParser(pr);
    try {
      boolean array = c == '[';
      if (array) p.nextToken();
      while (true) {
        JsonToken t = p.nextToken();
        if (t == null || (array && t == JsonToken.END_ARRAY)) return null;
        long line = p.currentTokenLocation().getLineNr();
        JsonNode node = p.readValueAsTree();
        sink.record(node, line);
      }
    } catch (JsonProcessingException e) {
      lastJsonLine = e.getLocation() == null ? 0 : e.getLocation().getLineNr();
      return e.getOriginalMessage();
    }
  }

  private void record(JsonNode node, long line, Sink sink) throws IOException {
    if (node.isTextual()) {
      sink.document(node.asText(), line);
      return;
    }
    JsonNode v = node.isObject() ? node.get(options.textField()) : null;
    if (v != null && v.isTextual()) {
      sink.document(v.asText(), line);
    } else if (v != null && v.isArray() && allText(v)) {
      StringBuilder b = new StringBuilder();
      for (JsonNode e : v) {
        if (!b.isEmpty()) b.append('\n');
        b.append(e.asText());
      }
      sink.document(b.toString(), line);
    } else {
      sink.bad(
          Bad.MISSING_FIELD,
          line,
          v == null
              ? "no string field '" + options.textField() + "'"
              : "field '" + options.textField() + "' is " + v.getNodeType());
    }
  }

  private static boolean allText(JsonNode array) {
    for (JsonNode e : array) if (!e.isTextual()) return false;
    return true;
  }

  private void readCsv(Sink sink) throws IOException {
    Csv csv = new Csv(text);
    List<String> header = csv.next();
    if (header == null) return;
    int col = header.indexOf(options.textField());
    if (col < 0) col = 0;
    while (true) {
      List<String> rec;
      try {
        rec = csv.next();
      } catch (Csv.MalformedCsv e) {
        sink.bad(Bad.MALFORMED, csv.recordLine(), e.getMessage() + " (rest of the file skipped)");
        return;
      }
      if (rec == null) return;
      if (rec.size() == 1 && rec.getFirst().isEmpty() && header.size() > 1) continue; // blank
      if (col >= rec.size()) {
        sink.bad(
            Bad.MISSING_FIELD,
            csv.recordLine(),
            "record has " + rec.size() + " fields, the text is column " + (col + 1));
        continue;
      }
      sink.document(rec.get(col), csv.recordLine());
    }
  }

  @Override
  public String toString() {
    return path.toString();
  }
}
