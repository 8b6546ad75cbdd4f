package dev.hanlin.data.prepare;

import java.nio.file.Path;
import java.util.Locale;

/** Input file formats, chosen by extension ({@code .gz} is stripped first). */
enum InputFormat {
  /** Plain text: one document per line, or the whole file as one document. */
  TXT,
  /** JSON Lines: one object per line, the text in a configurable field. */
  JSONL,
  /** A JSON array of objects (or strings), or a sequence of root objects. */
  JSON,
  /** CSV with a header row: the text column, else the first column. */
  CSV;

  static boolean isGzip(Path p) {
    return p.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".gz");
  }

  /** The format of {@code p}, or null when the extension is not a supported one. */
  static InputFormat of(Path p) {
    String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
    if (n.endsWith(".gz")) n = n.substring(0, n.length() - 3);
    int dot = n.lastIndexOf('.');
    String ext = dot < 0 ? "" : n.substring(dot + 1);
    return switch (ext) {
      case "txt", "text" -> TXT;
      case "jsonl", "ndjson" -> JSONL;
      case "json" -> JSON;
      case "csv" -> CSV;
      default -> null;
    };
  }
}
