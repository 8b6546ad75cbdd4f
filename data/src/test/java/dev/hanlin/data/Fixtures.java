package dev.hanlin.data;

import static org.junit.jupiter.api.Assertions.fail;

import dev.hanlin.data.prepare.PrepareConfig;
import dev.hanlin.data.shard.Manifest;
import dev.hanlin.data.shard.ShardReader;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

/** Test inputs from the committed snippets in test-data/data, and a byte-level tokenizer. */
public final class Fixtures {
  private Fixtures() {}

  public static Path testData() {
    Path p = Path.of("").toAbsolutePath();
    while (p != null && !Files.isDirectory(p.resolve("test-data"))) p = p.getParent();
    if (p == null) fail("no test-data/ folder above " + Path.of("").toAbsolutePath());
    return p.resolve("test-data");
  }

  /** The real Llama 2 tokenizer.model; fails naming setup.sh when it was not fetched. */
  public static Path llamaTokenizer() {
    Path p = testData().resolve("assets/tokenizer/tokenizer.model");
    if (!Files.isRegularFile(p)) {
      fail(
          "missing "
              + p
              + ": run test-data/tokenizer/setup.sh (fetches Meta's Llama 2 tokenizer.model)");
    }
    return p;
  }

  /** 66 paragraphs of the Analects (Chinese). */
  public static List<String> chinese() {
    try {
      var root =
          new com.fasterxml.jackson.databind.ObjectMapper()
              .readTree(testData().resolve("data/lunyu.json").toFile());
      List<String> out = new ArrayList<>();
      for (var chapter : root) for (var p : chapter.get("paragraphs")) out.add(p.asText());
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** 40 English fortunes. */
  public static List<String> english() {
    try {
      return Files.readAllLines(testData().resolve("data/fortunes_en.txt"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static List<String> mixed() {
    List<String> out = new ArrayList<>();
    List<String> zh = chinese();
    List<String> en = english();
    for (int i = 0; i < Math.max(zh.size(), en.size()); i++) {
      if (i < zh.size()) out.add(zh.get(i));
      if (i < en.size()) out.add(en.get(i));
    }
    return out;
  }

  public static Path write(Path p, String content) throws IOException {
    Files.createDirectories(p.toAbsolutePath().getParent());
    if (p.toString().endsWith(".gz")) {
      try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(p))) {
        o.write(content.getBytes(StandardCharsets.UTF_8));
      }
    } else {
      Files.writeString(p, content);
    }
    return p;
  }

  public static String jsonl(List<String> docs, String field) {
    var m = new com.fasterxml.jackson.databind.ObjectMapper();
    StringBuilder b = new StringBuilder();
    for (String d : docs) {
      try {
        b.append(m.writeValueAsString(Map.of(field, d))).append('\n');
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return b.toString();
  }

  public static String csv(List<String> docs) {
    StringBuilder b = new StringBuilder("id,text\n");
    int i = 0;
    for (String d : docs)
      b.append(i++).append(",\"").append(d.replace("\"", "\"\"")).append("\"\n");
    return b.toString();
  }

  /**
   * A tokenizer whose ids are UTF-8 bytes plus an offset: BOS 1, EOS 2, byte b is {@code offset +
   * b}. With a large offset the vocabulary passes 65536, for the uint32 path.
   */
  public static class ByteTokenizer implements Tokenizer {
    final int offset;

    public ByteTokenizer() {
      this(3);
    }

    public ByteTokenizer(int offset) {
      this.offset = offset;
    }

    @Override
    public int[] encode(String text, boolean addBos, boolean addEos) {
      byte[] b = text.getBytes(StandardCharsets.UTF_8);
      int[] ids = new int[b.length + (addBos ? 1 : 0) + (addEos ? 1 : 0)];
      int k = 0;
      if (addBos) ids[k++] = 1;
      for (byte x : b) ids[k++] = offset + (x & 0xFF);
      if (addEos) ids[k] = 2;
      return ids;
    }

    @Override
    public Encoding encodeWithOffsets(String text, boolean addBos, boolean addEos) {
      int[] ids = encode(text, addBos, addEos);
      int[] starts = new int[ids.length];
      int k = addBos ? 1 : 0;
      for (int i = 0; i < text.length(); ) {
        int cp = text.codePointAt(i);
        int n = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8).length;
        for (int j = 0; j < n; j++) starts[k++] = i;
        i += Character.charCount(cp);
      }
      if (addEos) starts[k] = text.length();
      return new Encoding(ids, starts);
    }

    @Override
    public String decode(int[] ids) {
      byte[] b = new byte[ids.length];
      int k = 0;
      for (int id : ids) if (id >= offset) b[k++] = (byte) (id - offset);
      return new String(b, 0, k, StandardCharsets.UTF_8);
    }

    @Override
    public int vocabSize() {
      return offset + 256;
    }

    @Override
    public int bosId() {
      return 1;
    }

    @Override
    public int eosId() {
      return 2;
    }

    @Override
    public int unkId() {
      return 0;
    }

    @Override
    public String piece(int id) {
      return String.valueOf(id);
    }

    @Override
    public String fingerprint() {
      return "bytes-" + offset;
    }
  }

  /** A prepare config over {@code inputs} with overrides (YAML keys). */
  public static PrepareConfig config(Path out, List<String> inputs, Map<String, Object> extra) {
    Map<String, Object> m = new HashMap<>();
    m.put("tokenizer", "unused-in-tests");
    m.put("output_dir", out.toString());
    m.put("train_files", inputs);
    m.put("workers", 2);
    m.put("progress", false);
    m.putAll(extra);
    return PrepareConfig.load(null, m);
  }

  /** All documents of a split, decoded, in order. */
  public static List<String> documents(Path dir, String split, Tokenizer tok) throws IOException {
    List<String> out = new ArrayList<>();
    Manifest m = Manifest.read(dir);
    for (Manifest.ShardEntry e : m.shards(split)) {
      try (ShardReader r = ShardReader.open(dir.resolve(e.file()), null)) {
        for (long d = 0; d < r.documentCount(); d++) {
          long s = r.documentStart(d);
          long n = r.documentStart(d + 1) - s;
          int[] ids = new int[(int) n];
          for (int i = 0; i < n; i++) ids[i] = r.token(s + i);
          out.add(tok.decode(ids));
        }
      }
    }
    return out;
  }
}
