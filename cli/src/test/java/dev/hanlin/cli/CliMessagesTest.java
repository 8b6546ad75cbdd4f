package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** What a newcomer's mistakes on the command line print (issue 13, item 9). */
class CliMessagesTest {
  @TempDir Path dir;

  record Run(int code, String err) {}

  static Run run(String... args) {
    PrintStream old = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      return new Run(Cli.run(args), buf.toString(StandardCharsets.UTF_8));
    } finally {
      System.setErr(old);
    }
  }

  @Test
  void anUnknownModeListsTheModes() {
    Run r = run("--mode", "bogus");
    assertEquals(2, r.code());
    assertTrue(r.err().startsWith("error: unknown mode 'bogus'; the modes are generate,"), r.err());
    assertTrue(r.err().contains("pretrain, sft"), r.err());
    Run near = run("--mode", "pretrian");
    assertTrue(near.err().contains("(did you mean 'pretrain'?)"), near.err());
  }

  @Test
  void everyModesHelpWorksWithoutItsRequiredOptions() {
    for (String mode : new CommandLine(new Cli()).getSubcommands().keySet()) {
      Run r = run("--mode", mode, "--help");
      assertEquals(0, r.code(), mode + ": " + r.err());
    }
  }

  /**
   * `java -jar` under a POSIX locale: a mangled argument is an error, not 6 byte tokens of U+FFFD.
   */
  @Test
  void anArgumentTheLocaleManglesIsAnError() {
    assertEquals(null, Cli.mangledArgument(new String[] {"--text", "\uFFFD\uFFFD"}, "UTF-8"));
    String m = Cli.mangledArgument(new String[] {"--text", "\uFFFD\uFFFD"}, "ANSI_X3.4-1968");
    assertTrue(m.contains("read the command line as ANSI_X3.4-1968"), m);
    assertTrue(m.contains("LC_ALL=C.UTF-8"), m);
    Run r = run("--mode", "tokenize", "--tokenizer", "x", "--text", "\uFFFD");
    if (!System.getProperty("sun.jnu.encoding").equalsIgnoreCase("UTF-8"))
      assertEquals(2, r.code(), r.err());
  }

  @Test
  void aMissingConfigIsNamed() {
    Run r = run("--mode", "pretrain", "--config", dir.resolve("missing.yaml").toString());
    assertEquals(1, r.code());
    assertEquals("error: config " + dir.resolve("missing.yaml") + ": no such file\n", r.err());
  }

  @Test
  void aBadStepCountIsReportedByKeyBeforeAnyDataIsPrepared() throws Exception {
    Path repo = TinyRun.repo();
    Path out = dir.resolve("out");
    Path y =
        Files.writeString(
            dir.resolve("c.yaml"),
            """
            model_config: %s
            tokenizer: %s
            train_files: [%s]
            output_dir: %s
            max_steps: 10
            """
                .formatted(
                    repo.resolve("configs/demo/tiny-llama.json"),
                    repo.resolve("configs/demo/tokenizer.model"),
                    repo.resolve("configs/demo/songci.txt"),
                    out));
    for (String bad : new String[] {"0", "-3"}) {
      Run r = run("--mode", "pretrain", "--config", y.toString(), "--set", "max_steps=" + bad);
      assertEquals(1, r.code());
      assertTrue(r.err().contains("'max_steps' must be > 0, got " + bad), r.err());
      assertFalse(Files.exists(out), "nothing written before the config is valid");
    }
  }
}
