// Data-pipeline benchmark (issue 4): prepare throughput on a real corpus, then loader blocks/s and
// how long a trainer running at a given token rate would wait for data. Run by bench/data.sh with
// Java's single-file source launcher on the trainer's class path (no bench-module dependency).
import dev.hanlin.data.loader.Batch;
import dev.hanlin.data.Cursor;
import dev.hanlin.data.loader.DataLoader;
import dev.hanlin.data.loader.LoaderOptions;
import dev.hanlin.data.prepare.Prepare;
import dev.hanlin.data.prepare.PrepareConfig;
import dev.hanlin.data.shard.TokenDataset;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Torch;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

public class DataBench {
  public static void main(String[] a) throws Exception {
    Map<String, String> o = new java.util.HashMap<>();
    for (int i = 0; i + 1 < a.length; i += 2) o.put(a[i].replaceFirst("^--", ""), a[i + 1]);
    Path tokPath = Path.of(o.get("tokenizer"));
    String corpus = o.get("corpus");
    Path out = Path.of(o.getOrDefault("out", "/tmp/hanlin-databench"));
    int workers = Integer.parseInt(o.getOrDefault("workers", "0"));
    int block = Integer.parseInt(o.getOrDefault("block", "1024"));
    int batch = Integer.parseInt(o.getOrDefault("batch", "8"));
    int steps = Integer.parseInt(o.getOrDefault("steps", "2000"));
    double trainerTps = Double.parseDouble(o.getOrDefault("trainer-tokens-per-s", "50000"));

    Tokenizer tok = Tokenizer.load(tokPath);
    deleteTree(out);
    PrepareConfig cfg =
        PrepareConfig.load(
            null,
            Map.of(
                "tokenizer", tokPath.toString(),
                "train_files", List.of(corpus.split(",")),
                "output_dir", out.toString(),
                "validation_split_percentage", 1.0,
                "workers", workers,
                "progress", false));
    Prepare.Result r = Prepare.run(cfg, tok, System.err);
    System.out.print(r.summary());
    System.out.printf(
        Locale.ROOT,
        "PREPARE cold: %.1f MB in %.2f s = %.2f MB/s, %.0f tokens/s (%d workers, %d cores)%n",
        r.bytesProcessed() / 1e6,
        r.seconds(),
        r.megabytesPerSecond(),
        r.tokensPerSecond(),
        cfg.workers(),
        Runtime.getRuntime().availableProcessors());
    long t0 = System.nanoTime();
    Prepare.Result again = Prepare.run(cfg, tok, System.err);
    System.out.printf(
        Locale.ROOT,
        "PREPARE re-run (all inputs unchanged): %.3f s, %d reused%n",
        (System.nanoTime() - t0) / 1e9,
        again.reused());

    Torch.setNumThreads(1);
    try (TokenDataset ds = TokenDataset.open(out, "train", tok.fingerprint())) {
      LoaderOptions lo = LoaderOptions.of(block, batch, 1);
      try (DataLoader dl = new DataLoader(ds, lo, Cursor.START)) {
        for (int i = 0; i < 50; i++) dl.next().close(); // warm up
        long s = System.nanoTime();
        for (int i = 0; i < steps; i++) {
          try (Batch b = dl.next()) {
            // a trainer would read b.inputs() / b.targets() here
          }
        }
        double sec = (System.nanoTime() - s) / 1e9;
        double bps = steps * (double) batch / sec;
        System.out.printf(
            Locale.ROOT,
            "LOADER flat out: %d steps of %d x %d in %.2f s = %.0f blocks/s, %.2fM tokens/s,"
                + " %.1f us per batch%n",
            steps,
            batch,
            block + 1,
            sec,
            bps,
            bps * block / 1e6,
            sec / steps * 1e6);
      }
      // A trainer at trainerTps: each step takes batch*block/trainerTps seconds of compute; the
      // time spent blocked in next() is what the data pipeline costs it.
      double stepSec = batch * (double) block / trainerTps;
      int simSteps = (int) Math.min(400, Math.max(20, 10.0 / stepSec));
      try (DataLoader dl = new DataLoader(ds, lo, Cursor.START)) {
        dl.next().close();
        long waited = 0;
        long[] each = new long[simSteps];
        for (int i = 0; i < simSteps; i++) {
          busy(stepSec);
          long w0 = System.nanoTime();
          try (Scope sc = Scope.open();
              Batch b = dl.next()) {
            each[i] = System.nanoTime() - w0;
            waited += each[i];
          }
        }
        java.util.Arrays.sort(each);
        System.out.printf(
            Locale.ROOT,
            "  wait per step: median %.1f us, max %.1f us%n",
            each[simSteps / 2] / 1e3,
            each[simSteps - 1] / 1e3);
        System.out.printf(
            Locale.ROOT,
            "TRAINER at %.0f tokens/s (step %.1f ms for %d x %d tokens): waits %.1f us per step"
                + " for data (mean over %d steps)%n",
            trainerTps,
            stepSec * 1e3,
            batch,
            block,
            waited / 1e3 / simSteps,
            simSteps);
      }
    }
  }

  private static void busy(double seconds) throws InterruptedException {
    Thread.sleep((long) (seconds * 1000), (int) ((seconds * 1e9) % 1_000_000));
  }

  private static void deleteTree(Path p) throws java.io.IOException {
    if (!java.nio.file.Files.exists(p)) return;
    try (var s = java.nio.file.Files.walk(p)) {
      for (Path x : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
        java.nio.file.Files.delete(x);
      }
    }
  }
}
