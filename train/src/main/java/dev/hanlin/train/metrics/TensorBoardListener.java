package dev.hanlin.train.metrics;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.DoubleSupplier;

/**
 * TensorBoard scalars in {@code <output>/runs/events.out.tfevents.<unix-seconds>.<hostname>}
 * ({@link EventFile}): {@code train/loss, train/lr, train/grad_norm, train/tokens_per_second,
 * train/mfu} per step and {@code eval/loss, eval/perplexity, eval/accuracy} per evaluation. Each
 * process writes a new file; a resumed run starts its file with a session START at the first new
 * step, so TensorBoard drops the points that a killed run wrote past the checkpoint.
 */
public final class TensorBoardListener implements TrainingListener {
  /** The folder under the output folder (TensorBoard's {@code --logdir}). */
  public static final String DIR_NAME = "runs";

  private final DoubleSupplier wallClock;
  private final String hostname;
  private EventFile file;
  private Path path;

  /** Events stamped with the system clock, named after this host. */
  public TensorBoardListener() {
    this(() -> System.currentTimeMillis() / 1e3, hostname());
  }

  /**
   * Events stamped with {@code wallClock} (Unix seconds), the file named after {@code hostname}.
   */
  public TensorBoardListener(DoubleSupplier wallClock, String hostname) {
    this.wallClock = wallClock;
    this.hostname = hostname;
  }

  /** The event file, null before {@link #onStart}. */
  public Path file() {
    return path;
  }

  @Override
  public void onStart(RunInfo info) {
    Path dir = info.outputDir().resolve(DIR_NAME);
    double now = wallClock.getAsDouble();
    String name = "events.out.tfevents." + (long) now + "." + hostname;
    try {
      Files.createDirectories(dir);
      Path path = dir.resolve(name);
      for (int i = 1; Files.exists(path); i++) path = dir.resolve(name + "." + i);
      file = EventFile.create(path, now);
      this.path = path;
      if (info.resumed()) file.write(EventFile.sessionStartEvent(now, info.startStep() + 1));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create an event file in " + dir, e);
    }
  }

  @Override
  public void onStep(StepMetrics m) {
    Map<String, Float> v = new LinkedHashMap<>();
    put(v, "train/loss", m.loss());
    put(v, "train/lr", m.lr());
    put(v, "train/grad_norm", m.gradNorm());
    put(v, "train/tokens_per_second", m.tokensPerSecond());
    put(v, "train/mfu", m.mfu());
    write(m.step(), v);
  }

  @Override
  public void onEval(EvalMetrics m) {
    Map<String, Float> v = new LinkedHashMap<>();
    put(v, "eval/loss", m.loss());
    put(v, "eval/perplexity", m.perplexity());
    put(v, "eval/accuracy", m.accuracy());
    write(m.step(), v);
  }

  @Override
  public void onEnd() {
    if (file == null) return;
    try {
      file.close();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot close " + file.path(), e);
    } finally {
      file = null;
    }
  }

  /** Non-finite values (a skipped step's loss, MFU on CPU) are left out rather than plotted. */
  private static void put(Map<String, Float> v, String tag, double value) {
    if (Double.isFinite(value)) v.put(tag, (float) value);
  }

  private void write(long step, Map<String, Float> values) {
    if (file == null) throw new IllegalStateException("TensorBoardListener used before onStart");
    if (values.isEmpty()) return;
    try {
      file.write(EventFile.scalarsEvent(wallClock.getAsDouble(), step, values));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file.path(), e);
    }
  }

  /** The host name as Python's {@code socket.gethostname()} gives it, for the file name. */
  static String hostname() {
    String env = System.getenv("HOSTNAME");
    if (env != null && !env.isBlank()) return env.strip();
    try {
      Path kernel = Path.of("/proc/sys/kernel/hostname");
      if (Files.isReadable(kernel)) return Files.readString(kernel, StandardCharsets.UTF_8).strip();
      return InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      return "localhost";
    }
  }
}
