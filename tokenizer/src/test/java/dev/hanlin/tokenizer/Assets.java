package dev.hanlin.tokenizer;

import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Locates the fetched test assets; a missing asset fails the test and names setup.sh. */
final class Assets {
  private static final ObjectMapper JSON = new ObjectMapper();

  private Assets() {}

  static Path root() {
    Path p = Path.of("").toAbsolutePath();
    while (p != null && !Files.isDirectory(p.resolve("test-data"))) p = p.getParent();
    if (p == null) fail("no test-data/ folder above " + Path.of("").toAbsolutePath());
    return p.resolve("test-data");
  }

  static Path require(String relative) {
    Path p = root().resolve("assets").resolve(relative);
    if (!Files.exists(p)) {
      fail(
          "missing test asset "
              + p
              + ": run test-data/tokenizer/setup.sh (fetches the Llama 2 tokenizer.model, the"
              + " corpora and the sentencepiece goldens)");
    }
    return p;
  }

  static Path llamaModel() {
    return require("tokenizer/tokenizer.model");
  }

  private static Tokenizer llama;

  /** Meta's Llama 2 tokenizer, loaded once for all tests. */
  static synchronized Tokenizer llama() {
    if (llama == null) llama = Tokenizer.load(llamaModel());
    return llama;
  }

  /** One golden: text, SentencePiece's ids, and its decode when that differs from the text. */
  record Golden(String text, int[] ids, String decoded) {}

  static List<Golden> readGoldens(Path file) {
    List<Golden> out = new ArrayList<>();
    try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      for (String line; (line = r.readLine()) != null; ) {
        if (line.isBlank() || line.startsWith("#")) continue;
        JsonNode n = JSON.readTree(line);
        JsonNode ids = n.get("ids");
        int[] a = new int[ids.size()];
        for (int i = 0; i < a.length; i++) a[i] = ids.get(i).asInt();
        String t = n.get("t").asText();
        out.add(new Golden(t, a, n.has("dec") ? n.get("dec").asText() : t));
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out;
  }
}
