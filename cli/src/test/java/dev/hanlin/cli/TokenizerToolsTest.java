package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.io.ProgressLine;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class TokenizerToolsTest {
  /**
   * extend-vocab's bar, as tokenizer/ConsoleProgress drew it before it moved onto ProgressLine: one
   * in-place line per phase, redrawn when the percentage changes, ended at 100 % or when the next
   * phase begins.
   */
  @Test
  void phaseBarDrawsOneLinePerPhase() {
    var bytes = new ByteArrayOutputStream();
    var bar =
        new TokenizerTools.PhaseBar(
            new ProgressLine(new PrintStream(bytes, true, StandardCharsets.UTF_8), true));
    bar.update("count", 0, 2000);
    bar.update("count", 1, 2000); // still 0 %: not redrawn
    bar.update("count", 1000, 2000);
    bar.update("merge", 3, 4);
    bar.update("merge", 4, 4);
    String[] lines = bytes.toString(StandardCharsets.UTF_8).split("\n", -1);
    assertEquals(3, lines.length, bytes.toString());
    assertTrue(
        lines[0].matches(
            "\\rcount  \\[ {25}]   0% 0/2,000  \\d+s\\rcount  \\[#{12} {13}]  50% 1,000/2,000  \\d+s"),
        lines[0]);
    assertTrue(
        lines[1].matches(
            "\\rmerge  \\[#{18} {7}]  75% 3/4  \\d+s\\rmerge  \\[#{25}] 100% 4/4  \\d+s"),
        lines[1]);
    assertEquals("", lines[2]);
  }
}
