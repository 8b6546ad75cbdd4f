package dev.hanlin.data.prepare;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Fixtures;
import dev.hanlin.data.Permutation;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The validation split depends on the seed and each document's text only: the same corpus at
 * another path, under another name, or in another file order splits the same (the embedded demo and
 * configs/pretrain-demo.yaml read one text from two places and must agree).
 */
class PrepareSplitTest {
  @TempDir Path dir;
  final Tokenizer tok = new Fixtures.ByteTokenizer();
  final PrintStream quiet = new PrintStream(new ByteArrayOutputStream());
  final Map<String, Object> opts = Map.of("validation_split_percentage", 25.0, "seed", 7);

  List<String> validation(Path out, List<String> inputs) throws IOException {
    Prepare.run(Fixtures.config(out, inputs, opts), tok, dir, quiet);
    return Fixtures.documents(out, "validation", tok);
  }

  @Test
  void theSameTextSplitsTheSameAtAnotherPathOrName() throws Exception {
    List<String> docs = Fixtures.mixed();
    Fixtures.write(dir.resolve("a.jsonl"), Fixtures.jsonl(docs, "text"));
    Files.createDirectories(dir.resolve("elsewhere/deeper"));
    Files.copy(dir.resolve("a.jsonl"), dir.resolve("elsewhere/deeper/renamed.jsonl"));
    List<String> here = validation(dir.resolve("o1"), List.of("a.jsonl"));
    List<String> there = validation(dir.resolve("o2"), List.of("elsewhere/deeper/renamed.jsonl"));
    assertTrue(here.size() >= 12 && here.size() <= 40, "about 25% of 106: " + here.size());
    assertEquals(here, there);
  }

  @Test
  void splittingAFileInTwoKeepsEachDocumentsSide() throws Exception {
    List<String> docs = Fixtures.mixed();
    int half = docs.size() / 2;
    Fixtures.write(dir.resolve("all.jsonl"), Fixtures.jsonl(docs, "text"));
    Fixtures.write(
        dir.resolve("p1.jsonl"), Fixtures.jsonl(docs.subList(half, docs.size()), "text"));
    Fixtures.write(dir.resolve("p2.jsonl"), Fixtures.jsonl(docs.subList(0, half), "text"));
    var whole = new HashSet<>(validation(dir.resolve("w"), List.of("all.jsonl")));
    var parts = new HashSet<>(validation(dir.resolve("p"), List.of("p1.jsonl", "p2.jsonl")));
    assertEquals(whole, parts);
    assertTrue(new ArrayList<>(whole).size() > 0);
  }

  @Test
  void theSplitDependsOnTheSeed() {
    long a = Permutation.mix(7 * 0x9E3779B97F4A7C15L), b = Permutation.mix(8 * 0x9E3779B97F4A7C15L);
    int differ = 0;
    for (int i = 0; i < 200; i++) {
      String t = "document " + i;
      if (Prepare.inValidation(a, t, 25) != Prepare.inValidation(b, t, 25)) differ++;
    }
    assertTrue(differ > 20, "seeds 7 and 8 split 200 documents alike but for " + differ);
  }
}
