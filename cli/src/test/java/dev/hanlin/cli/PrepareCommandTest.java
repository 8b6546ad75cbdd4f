package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.hanlin.data.prepare.PrepareConfig;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class PrepareCommandTest {
  private static PrepareCommand parse(String... args) {
    PrepareCommand c = new PrepareCommand();
    new CommandLine(c).parseArgs(args);
    return c;
  }

  /** Each flag sets the config key of its name, typed as the config reads it. */
  @Test
  void everyFlagSetsItsConfigKey() {
    PrepareCommand c =
        parse(
            "--tokenizer=t.model",
            "--train-files=a.txt,b.txt",
            "--train-files=c.txt",
            "--output-dir=o",
            "--validation-split-percentage=2.5",
            "--seed=7",
            "--text-field=content",
            "--txt-document=file",
            "--keep-linebreaks=false",
            "--max-train-samples=10",
            "--max-eval-samples=5",
            "--max-bad-records=2",
            "--workers=3",
            "--shard-tokens=100",
            "--progress=false");
    assertEquals(PrepareCommand.FLAGS.size() - 1, c.flags().size()); // all but --validation-files
    PrepareConfig p = PrepareConfig.load(null, c.flags());
    assertEquals("t.model", p.tokenizer());
    assertEquals(List.of("a.txt", "b.txt", "c.txt"), p.trainFiles());
    assertEquals("o", p.outputDir());
    assertEquals(2.5, p.validationSplitPercentage());
    assertEquals(7L, p.seed());
    assertEquals("content", p.textField());
    assertEquals("file", p.txtDocument());
    assertEquals(false, p.keepLinebreaks());
    assertEquals(10L, p.maxTrainSamples());
    assertEquals(5L, p.maxEvalSamples());
    assertEquals(2L, p.maxBadRecords());
    assertEquals(3, p.workers());
    assertEquals(100L, p.shardTokens());
    assertEquals(false, p.progress());
  }

  @Test
  void validationFilesAreAList() {
    PrepareCommand c =
        parse(
            "--tokenizer=t", "--output-dir=o", "--train-files=a", "--validation-files=v.txt,w.txt");
    assertEquals(List.of("v.txt", "w.txt"), PrepareConfig.load(null, c.flags()).validationFiles());
  }

  @Test
  void flagsNotGivenLeaveTheConfigsKeys() {
    assertEquals(Map.of("workers", 1), parse("--workers", "1").flags());
  }
}
