package dev.hanlin.train.metrics;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.torch.io.AtomicFiles;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.geom.Ellipse2D;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * The loss curve as a PNG: train loss raw (thin, light) and smoothed (bias-corrected EMA over about
 * 2% of the run, at least 10 steps), and eval loss with markers, against the step. Drawn with
 * JFreeChart in headless mode, so it works on servers without a display.
 */
public final class LossPlot {
  /** Default picture size. */
  public static final int WIDTH = 1000, HEIGHT = 600;

  /** One point of a curve. */
  public record Point(long step, double value) {}

  private LossPlot() {}

  /** Train and eval loss points read back from a {@code metrics.jsonl}. */
  public record Curves(List<Point> train, List<Point> eval) {}

  /**
   * Draws the curves into {@code png}. Non-finite points are left out.
   *
   * @throws IOException if the file cannot be written
   */
  public static void write(
      Path png, String title, List<Point> train, List<Point> eval, int width, int height)
      throws IOException {
    if (System.getProperty("java.awt.headless") == null)
      System.setProperty("java.awt.headless", "true");
    List<Point> finiteTrain = finite(train);
    XYSeries raw = new XYSeries("train loss", false, true);
    XYSeries smooth = new XYSeries("train loss (smoothed)", false, true);
    XYSeries ev = new XYSeries("eval loss", false, true);
    double[] ys = new double[finiteTrain.size()];
    for (int i = 0; i < ys.length; i++) ys[i] = finiteTrain.get(i).value();
    double[] sm = Ema.smooth(ys, smoothingBeta(ys.length));
    for (int i = 0; i < ys.length; i++) {
      raw.add(finiteTrain.get(i).step(), ys[i]);
      smooth.add(finiteTrain.get(i).step(), sm[i]);
    }
    for (Point p : finite(eval)) ev.add(p.step(), p.value());

    XYSeriesCollection data = new XYSeriesCollection();
    data.addSeries(raw);
    data.addSeries(smooth);
    data.addSeries(ev);
    JFreeChart chart =
        ChartFactory.createXYLineChart(
            title, "step", "loss", data, PlotOrientation.VERTICAL, true, false, false);
    chart.setBackgroundPaint(Color.WHITE);
    XYPlot plot = chart.getXYPlot();
    plot.setBackgroundPaint(Color.WHITE);
    plot.setDomainGridlinePaint(new Color(0xDDDDDD));
    plot.setRangeGridlinePaint(new Color(0xDDDDDD));
    ((NumberAxis) plot.getRangeAxis()).setAutoRangeIncludesZero(false);
    ((NumberAxis) plot.getDomainAxis()).setStandardTickUnits(NumberAxis.createIntegerTickUnits());

    XYLineAndShapeRenderer r = new XYLineAndShapeRenderer(true, false);
    r.setSeriesPaint(0, new Color(0x9ECAE1));
    r.setSeriesStroke(0, new BasicStroke(1f));
    r.setSeriesPaint(1, new Color(0x08519C));
    r.setSeriesStroke(1, new BasicStroke(2.5f));
    r.setSeriesPaint(2, new Color(0xE6550D));
    r.setSeriesStroke(2, new BasicStroke(2f));
    r.setSeriesShapesVisible(2, true);
    r.setSeriesShape(2, new Ellipse2D.Double(-4, -4, 8, 8));
    plot.setRenderer(r);

    Path parent = png.toAbsolutePath().getParent();
    if (parent != null) Files.createDirectories(parent);
    // ImageIO's disk cache registers a JVM shutdown hook on first use, which throws "Shutdown in
    // progress" when the picture is drawn after SIGTERM/Ctrl-C (the stop hook waits for the final
    // checkpoint and picture): encode in memory. A temporary file renamed into place means a
    // failure never leaves a truncated loss.png.
    ImageIO.setUseCache(false);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    ChartUtils.writeChartAsPNG(bytes, chart, width, height);
    AtomicFiles.write(png, bytes.toByteArray());
  }

  /** Reads the train and eval losses of a {@code metrics.jsonl} ({@link JsonlListener}). */
  public static Curves read(Path metricsJsonl) throws IOException {
    ObjectMapper json = new ObjectMapper();
    List<Point> train = new ArrayList<>(), eval = new ArrayList<>();
    try (BufferedReader in = Files.newBufferedReader(metricsJsonl, StandardCharsets.UTF_8)) {
      int lineNo = 0;
      for (String line; (line = in.readLine()) != null; ) {
        lineNo++;
        if (line.isBlank()) continue;
        JsonNode n;
        try {
          n = json.readTree(line);
        } catch (IOException e) {
          throw new IOException(metricsJsonl + ":" + lineNo + ": not JSON: " + e.getMessage(), e);
        }
        JsonNode loss = n.path("loss");
        if (!loss.isNumber()) continue;
        Point p = new Point(n.path("step").asLong(), loss.asDouble());
        switch (n.path("type").asText()) {
          case "train" -> train.add(p);
          case "eval" -> eval.add(p);
          default -> {}
        }
      }
    }
    return new Curves(train, eval);
  }

  /** Draws {@code loss.png}-style curves from a {@code metrics.jsonl}. */
  public static void fromJsonl(Path metricsJsonl, Path png, String title) throws IOException {
    Curves c = read(metricsJsonl);
    write(png, title, c.train(), c.eval(), WIDTH, HEIGHT);
  }

  /** EMA over about 2% of the points, at least 10. */
  static double smoothingBeta(int points) {
    return 1 - 1.0 / Math.max(10, points / 50);
  }

  private static List<Point> finite(List<Point> ps) {
    return ps.stream().filter(p -> Double.isFinite(p.value())).toList();
  }
}
