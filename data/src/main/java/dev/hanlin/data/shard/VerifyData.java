package dev.hanlin.data.shard;

import dev.hanlin.data.DataException;
import dev.hanlin.data.prepare.Prepare;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Stream;

/**
 * {@code --mode verify-data}: checks a prepared dataset completely, which opening it for training
 * does only cheaply: every shard's data checksum, document index and token range, BOS and EOS
 * around every document, the counts against the manifest, and (given the run's tokenizer) the
 * fingerprint.
 */
public final class VerifyData {
  private VerifyData() {}

  /**
   * What was checked and what was wrong.
   *
   * @param problems empty when the dataset is sound
   */
  public record Report(int shards, long tokens, long bytes, double seconds, List<String> problems) {
    public boolean ok() {
      return problems.isEmpty();
    }

    public String summary() {
      StringBuilder b =
          new StringBuilder(
              String.format(
                  Locale.ROOT,
                  "verify-data: %d shards, %,d tokens, %.1f MB checked in %.1f s: %s%n",
                  shards,
                  tokens,
                  bytes / 1e6,
                  seconds,
                  problems.isEmpty() ? "OK" : problems.size() + " problem(s)"));
      for (String p : problems) b.append("  ").append(p).append('\n');
      return b.toString();
    }
  }

  /**
   * Checks the dataset in {@code dir}; {@code fingerprint} (may be null) is the run's tokenizer.
   */
  public static Report run(Path dir, String fingerprint) throws IOException {
    long start = System.nanoTime();
    List<String> problems = new ArrayList<>();
    Manifest m = Manifest.read(dir);
    if (!m.complete()) problems.add("manifest says prepare did not finish (complete: false)");
    if (fingerprint != null && !fingerprint.equals(m.tokenizer().fingerprint())) {
      problems.add(
          "made with tokenizer " + m.tokenizer().fingerprint() + ", expected " + fingerprint);
    }
    int shards = 0;
    long tokens = 0;
    long bytes = 0;
    Set<String> listed = new HashSet<>();
    for (String split : List.of("train", "validation")) {
      long splitTokens = 0;
      long splitDocs = 0;
      for (Manifest.ShardEntry e : m.shards(split)) {
        Path p = dir.resolve(e.file());
        listed.add(p.normalize().toString());
        shards++;
        try (ShardReader r = ShardReader.open(p, m.tokenizer().fingerprint())) {
          splitTokens += r.tokenCount();
          splitDocs += r.documentCount();
          bytes += Files.size(p);
          r.verify(m.tokenizer().bosId(), m.tokenizer().eosId());
          if (r.tokenCount() != e.tokens() || r.documentCount() != e.documents()) {
            problems.add(
                p
                    + ": "
                    + r.tokenCount()
                    + " tokens / "
                    + r.documentCount()
                    + " documents, the manifest says "
                    + e.tokens()
                    + " / "
                    + e.documents());
          }
          if (r.vocabSize() != m.tokenizer().vocabSize()) {
            problems.add(
                p + ": vocabulary " + r.vocabSize() + ", manifest " + m.tokenizer().vocabSize());
          }
        } catch (DataException | IOException ex) {
          problems.add(ex.getMessage());
        }
      }
      tokens += splitTokens;
      Manifest.SplitTotals t = split.equals("train") ? m.splits().train() : m.splits().validation();
      if (t.tokens() != splitTokens || t.documents() != splitDocs) {
        problems.add(
            split
                + ": shards hold "
                + splitTokens
                + " tokens in "
                + splitDocs
                + " documents, the manifest totals say "
                + t.tokens()
                + " in "
                + t.documents());
      }
    }
    Path shardDir = dir.resolve(Prepare.SHARD_DIR);
    if (Files.isDirectory(shardDir)) {
      try (Stream<Path> s = Files.list(shardDir)) {
        for (Path p : s.toList()) {
          if (p.toString().endsWith(ShardFormat.EXTENSION)
              && !listed.contains(p.normalize().toString())) {
            problems.add(p + ": shard file not listed in the manifest");
          }
        }
      }
    }
    return new Report(shards, tokens, bytes, (System.nanoTime() - start) / 1e9, problems);
  }
}
