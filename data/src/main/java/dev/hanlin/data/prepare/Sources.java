package dev.hanlin.data.prepare;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * Turns the configured inputs into a sorted, de-duplicated list of files: a file, a folder (every
 * supported file below it), a glob ({@code data/**.jsonl}), or a CSV manifest as Llama2-Chinese
 * uses, whose {@code file_name} column lists files relative to the manifest's folder.
 */
public final class Sources {
  private Sources() {}

  static final String MANIFEST_COLUMN = "file_name";

  /**
   * Expands {@code entries}, resolving relative ones against {@code base}; {@code textField} tells
   * a CSV data file (which has that column) from a CSV manifest (which has {@code file_name}).
   */
  public static List<Path> expand(List<String> entries, Path base, String textField)
      throws IOException {
    Set<Path> out = new LinkedHashSet<>();
    for (String e : entries) expandOne(e, base, textField, out, 0);
    return new ArrayList<>(out);
  }

  private static void expandOne(String entry, Path base, String textField, Set<Path> out, int depth)
      throws IOException {
    if (depth > 4) throw new IOException("CSV manifests nest too deeply at " + entry);
    if (isGlob(entry)) {
      List<Path> found = glob(entry, base);
      if (found.isEmpty()) throw new IOException("input pattern matches no file: " + entry);
      for (Path p : found) addFile(p, textField, out, depth);
      return;
    }
    Path p = base.resolve(entry).normalize();
    if (Files.isDirectory(p)) {
      try (Stream<Path> s = Files.walk(p)) {
        s.filter(Files::isRegularFile)
            .filter(x -> InputFormat.of(x) != null)
            .filter(x -> !x.getFileName().toString().startsWith("."))
            .sorted()
            .forEach(out::add);
      }
      return;
    }
    if (!Files.exists(p)) throw new IOException("input not found: " + p);
    addFile(p, textField, out, depth);
  }

  private static void addFile(Path p, String textField, Set<Path> out, int depth)
      throws IOException {
    if (!Files.isRegularFile(p)) throw new IOException("input is not a regular file: " + p);
    if (!Files.isReadable(p)) throw new IOException("input is not readable: " + p);
    if (InputFormat.of(p) == null) {
      throw new IOException(
          "unsupported input format: " + p + " (txt, jsonl, json, csv, optionally .gz)");
    }
    List<String> rows = InputFormat.of(p) == InputFormat.CSV ? manifestRows(p, textField) : null;
    if (rows == null) {
      out.add(p.toAbsolutePath().normalize());
      return;
    }
    for (String r : rows) expandOne(r, p.toAbsolutePath().getParent(), textField, out, depth + 1);
  }

  /** The {@code file_name} column when {@code csv} is a manifest, else null. */
  static List<String> manifestRows(Path csv, String textField) throws IOException {
    InputStream in = Files.newInputStream(csv);
    if (InputFormat.isGzip(csv)) in = new GZIPInputStream(in);
    try (Utf8Reader r = new Utf8Reader(in)) {
      Csv c = new Csv(r);
      List<String> header = c.next();
      if (header == null) return null;
      int col = header.indexOf(MANIFEST_COLUMN);
      if (col < 0 || header.contains(textField)) return null;
      List<String> rows = new ArrayList<>();
      for (List<String> rec; (rec = c.next()) != null; ) {
        if (col < rec.size() && !rec.get(col).isBlank()) rows.add(rec.get(col).strip());
      }
      return rows;
    }
  }

  static boolean isGlob(String s) {
    return s.indexOf('*') >= 0 || s.indexOf('?') >= 0 || s.indexOf('[') >= 0 || s.indexOf('{') >= 0;
  }

  private static List<Path> glob(String pattern, Path base) throws IOException {
    Path abs = base.resolve(pattern).normalize();
    // Walk from the longest prefix without glob characters.
    Path root = abs.getRoot() == null ? base : abs.getRoot();
    for (Path part : abs) {
      if (isGlob(part.toString())) break;
      root = root.resolve(part);
    }
    PathMatcher m = FileSystems.getDefault().getPathMatcher("glob:" + abs);
    if (!Files.isDirectory(root)) return List.of();
    try (Stream<Path> s = Files.walk(root)) {
      return s.filter(Files::isRegularFile).filter(m::matches).sorted().toList();
    }
  }
}
