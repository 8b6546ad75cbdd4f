package dev.hanlin.tokenizer;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Every golden document of every corpus (about 46 M characters) against SentencePiece. Slow: runs
 * with {@code mvn -Pslow -pl tokenizer test}.
 */
@Tag("slow")
class FullCorpusParityTest {

  @Test
  void allCorporaMatchSentencePiece() throws IOException {
    Tokenizer llama = Tokenizer.load(Assets.llamaModel());
    Path dir = Assets.require("tokenizer/quick.golden.jsonl").getParent();
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files =
          s.filter(p -> p.toString().endsWith(".golden.jsonl"))
              .filter(p -> !p.getFileName().toString().startsWith("quick"))
              .sorted()
              .toList();
    }
    ParityCheck total = new ParityCheck();
    StringBuilder report = new StringBuilder();
    for (Path f : files) {
      ParityCheck c = new ParityCheck();
      c.check(llama, Assets.readGoldens(f));
      report.append(c.summary(f.getFileName().toString()));
      total.documents += c.documents;
      total.characters += c.characters;
      total.tokens += c.tokens;
      total.encodeMismatches += c.encodeMismatches;
      total.decodeMismatches += c.decodeMismatches;
    }
    report.append(total.summary("all corpora"));
    System.out.println(report);
    assertTrue(total.characters >= 20_000_000, "fewer than 20 M characters checked");
    assertTrue(total.exact(), report.toString());
  }
}
