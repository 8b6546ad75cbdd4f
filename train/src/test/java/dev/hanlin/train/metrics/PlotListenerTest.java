package dev.hanlin.train.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PlotListenerTest {

  private static StepMetrics step(long s, double loss) {
    return new StepMetrics(s, 100, loss, 1e-3, 1, 10, 1, 10, Double.NaN, !Double.isFinite(loss));
  }

  @Test
  void drawsADecodablePngOfTheRequestedSize(@TempDir Path out) throws IOException {
    PlotListener p = new PlotListener(640, 400);
    p.onStart(new RunInfo("demo", 100, 0, out, Double.NaN, 1));
    for (int s = 1; s <= 100; s++) {
      p.onStep(step(s, s == 50 ? Double.NaN : 5 * Math.exp(-s / 30.0) + 0.1 * Math.sin(s)));
      if (s % 25 == 0) p.onEval(EvalMetrics.of(s, 5 * Math.exp(-s / 30.0) + 0.2, 0.3, 100));
    }
    p.onEnd();
    BufferedImage img = ImageIO.read(out.resolve("loss.png").toFile());
    assertNotNull(img, "loss.png does not decode");
    assertEquals(640, img.getWidth());
    assertEquals(400, img.getHeight());
    assertTrue(distinctColors(img) > 4, "the picture is blank");
  }

  @Test
  void resumedRunReadsEarlierPointsFromMetricsJsonl(@TempDir Path out) throws IOException {
    JsonlListener j = new JsonlListener(() -> 0);
    j.onStart(new RunInfo("demo", 10, 0, out, Double.NaN, 1));
    for (int s = 1; s <= 6; s++) j.onStep(step(s, 10 - s));
    j.onEval(EvalMetrics.of(4, 5, 0.1, 10));
    // killed after step 6; resumes from the checkpoint at 4
    Listeners both = Listeners.of(new JsonlListener(() -> 0), new PlotListener(300, 200));
    both.onStart(new RunInfo("demo", 10, 4, out, Double.NaN, 1));
    for (int s = 5; s <= 10; s++) both.onStep(step(s, 10 - s));
    both.onEnd();
    LossPlot.Curves c = LossPlot.read(out.resolve("metrics.jsonl"));
    assertEquals(
        List.of(1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L, 9L, 10L),
        c.train().stream().map(LossPlot.Point::step).toList());
    assertEquals(List.of(new LossPlot.Point(4, 5)), c.eval());
    assertTrue(Files.size(out.resolve("loss.png")) > 0);
    assertEquals(200, ImageIO.read(out.resolve("loss.png").toFile()).getHeight());
  }

  @Test
  void smoothingCoversAboutTwoPercentOfTheRun() {
    assertEquals(0.9, LossPlot.smoothingBeta(100), 1e-12);
    assertEquals(0.99, LossPlot.smoothingBeta(5000), 1e-12);
    double[] s = Ema.smooth(new double[] {4, Double.NaN, 2}, 0.9);
    assertEquals(4, s[0], 1e-12);
    assertTrue(Double.isNaN(s[1]));
    assertEquals((0.09 * 4 + 0.1 * 2) / 0.19, s[2], 1e-12);
  }

  private static int distinctColors(BufferedImage img) {
    var seen = new java.util.HashSet<Integer>();
    for (int y = 0; y < img.getHeight(); y += 3)
      for (int x = 0; x < img.getWidth(); x += 3) seen.add(img.getRGB(x, y));
    return seen.size();
  }
}
