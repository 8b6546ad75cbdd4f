package dev.hanlin.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real run: Llama 2 extended to 65,000 pieces from all training text on all cores, then python
 * sentencepiece loads the written tokenizer.model and encodes all held-out text (the same ids are
 * required), and tokens per Chinese character are reported. Slow (a few minutes).
 */
@Tag("slow")
class FullExtensionTest {
  @Test
  void extendTo65kAndCheckWithSentencePiece(@TempDir Path dir) throws Exception {
    BpeTokenizer base = (BpeTokenizer) Tokenizer.load(Assets.llamaModel());
    Path modern = Assets.require("corpus/zh_heldout_modern.txt");
    Path classical = Assets.require("corpus/zh_heldout_classical.txt");
    VocabExtension.Result r =
        VocabExtension.extend(
            base,
            List.of(Assets.require("corpus/zh_train.txt")),
            VocabExtension.Options.of(65000),
            VocabExtension.Progress.NONE);
    HfTokenizerJson.writeFolder(r.model(), dir);
    BpeTokenizer ext = (BpeTokenizer) Tokenizer.load(dir);
    assertEquals(65000, ext.vocabSize());
    assertEquals(List.of(), VocabExtension.unreachablePieces(ext, base.vocabSize()));

    Path goldens = dir.resolve("goldens.jsonl");
    Process p =
        new ProcessBuilder(
                "/usr/bin/python3",
                Assets.root().resolve("tokenizer/make_extension_goldens.py").toString(),
                dir.toString(),
                "100000000",
                modern.toString(),
                classical.toString())
            .redirectOutput(goldens.toFile())
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    if (p.waitFor() != 0) {
      fail("python3-sentencepiece could not encode with the extended model: run setup.sh");
    }
    ParityCheck c = new ParityCheck();
    c.check(ext, Assets.readGoldens(goldens));
    ParityCheck j = new ParityCheck();
    j.check(Tokenizer.load(dir.resolve("tokenizer.json")), Assets.readGoldens(goldens));
    StringBuilder report = new StringBuilder();
    report.append(
        String.format(
            "extended to %d: %d characters/emoji, %d merges, %d removed as unreachable%n",
            ext.vocabSize(), r.newCharacters(), r.newMerges(), r.removedUnreachable()));
    report.append(c.summary("python sentencepiece vs Hanlin, extended tokenizer.model"));
    report.append(j.summary("python sentencepiece vs Hanlin, extended tokenizer.json"));
    for (Path h : List.of(modern, classical)) {
      List<String> lines = Files.readString(h).lines().toList();
      Map<String, Double> b = Efficiency.measure(base, lines), a = Efficiency.measure(ext, lines);
      report.append(
          String.format(
              "%s: tokens/char %.3f -> %.3f, tokens/Chinese char %.3f -> %.3f,"
                  + " encode MB/s %.1f -> %.1f, decode MB/s %.1f -> %.1f%n",
              h.getFileName(),
              b.get("tokensPerChar"),
              a.get("tokensPerChar"),
              b.get("tokensPerHan"),
              a.get("tokensPerHan"),
              b.get("encodeMBs"),
              a.get("encodeMBs"),
              b.get("decodeMBs"),
              a.get("decodeMBs")));
    }
    System.out.println(report);
    writeReport(report.toString());
    assertTrue(c.exact() && j.exact(), report.toString());
  }

  private static void writeReport(String report) throws IOException {
    Files.writeString(Path.of("target", "full-extension-report.txt"), report);
  }
}
