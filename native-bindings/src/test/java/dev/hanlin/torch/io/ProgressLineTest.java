package dev.hanlin.torch.io;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ProgressLineTest {
  private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
  private final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);

  private String written() {
    return bytes.toString(StandardCharsets.UTF_8);
  }

  /**
   * On a terminal the line is redrawn in place, a shorter state padded over a longer one; a message
   * ends the line first so its last state stays visible.
   */
  @Test
  void interactiveRedrawsInPlaceAndPads() {
    ProgressLine p = new ProgressLine(out, true);
    p.show("step 9 | 12.3k");
    p.show("step 10 | 9k");
    p.message("checkpoint");
    p.show("step 11");
    p.end();
    p.end(); // nothing pending: no second newline
    assertEquals(
        "\rstep 9 | 12.3k\rstep 10 | 9k  \ncheckpoint\n\rstep 11\n",
        written().replace(System.lineSeparator(), "\n"));
  }

  @Test
  void logFileGetsWholeLines() {
    ProgressLine p = new ProgressLine(out, false);
    p.show("step 9 | 12.3k");
    p.show("step 10");
    p.end();
    p.message("done");
    assertEquals(
        "step 9 | 12.3k\nstep 10\ndone\n", written().replace(System.lineSeparator(), "\n"));
  }

  @Test
  void barFillsItsCells() {
    assertEquals("###  ", ProgressLine.bar('#', 3, 5));
    assertEquals("     ", ProgressLine.bar('=', 0, 5));
  }
}
