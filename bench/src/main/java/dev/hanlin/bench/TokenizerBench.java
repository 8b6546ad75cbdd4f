package dev.hanlin.bench;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.tokenizer.BpeTokenizer;
import dev.hanlin.tokenizer.HfTokenizerJson;
import dev.hanlin.tokenizer.SentencePieceModel;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Encode throughput of Hanlin's tokenizer and of HF tokenizers (Rust, through DJL) on the same
 * texts, one thread (per CPU-second of that thread) and all cores (wall clock), plus an id-for-id
 * comparison of the two. Prints {@code ROW|...} lines that bench/tokenizer.sh joins with Python
 * sentencepiece's into one table.
 *
 * <pre>
 * TokenizerBench --model tokenizer.model [--extended DIR] [--threads N] [--seconds S]
 *                --corpus NAME=FILE[,FILE...] ...     (FILE: .txt lines or .jsonl {"t": ...})
 *                [--parity NAME=FILE ...]             (ids compared only, not timed)
 * </pre>
 */
public final class TokenizerBench {
  private static final ObjectMapper JSON = new ObjectMapper();

  public static void main(String[] args) throws Exception {
    Path model = null;
    Path extended = null;
    int threads = Runtime.getRuntime().availableProcessors();
    double seconds = 3;
    Map<String, List<String>> corpora = new LinkedHashMap<>();
    Map<String, List<String>> parityOnly = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--model" -> model = Path.of(args[++i]);
        case "--extended" -> extended = Path.of(args[++i]);
        case "--threads" -> threads = Integer.parseInt(args[++i]);
        case "--seconds" -> seconds = Double.parseDouble(args[++i]);
        case "--corpus" -> {
          String[] kv = args[++i].split("=", 2);
          List<String> docs = new ArrayList<>();
          for (String f : kv[1].split(",")) docs.addAll(read(Path.of(f)));
          corpora.put(kv[0], docs);
        }
        case "--parity" -> {
          String[] kv = args[++i].split("=", 2);
          parityOnly.put(kv[0], read(Path.of(kv[1])));
        }
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    if (model == null || corpora.isEmpty()) {
      throw new IllegalArgumentException("usage: --model FILE --corpus NAME=FILE ...");
    }
    Map<String, Path> tokenizers = new LinkedHashMap<>();
    tokenizers.put("llama2-32k", model);
    if (extended != null) tokenizers.put("extended", extended);
    for (var t : tokenizers.entrySet()) {
      BpeTokenizer hanlin = (BpeTokenizer) Tokenizer.load(t.getValue());
      Path hfDir = Files.createTempDirectory("hf-tokenizer");
      SentencePieceModel m = hanlin.model();
      HfTokenizerJson.writeFolder(m, hfDir);
      try (HuggingFaceTokenizer hf =
          HuggingFaceTokenizer.newInstance(
              hfDir.resolve("tokenizer.json"),
              Map.of(
                  "addSpecialTokens", "false",
                  "truncation", "false",
                  "padding", "false",
                  "maxLength", "100000000"))) {
        for (var c : parityOnly.entrySet())
          compare(t.getKey(), c.getKey(), hanlin, hf, c.getValue());
        for (var c : corpora.entrySet()) {
          List<String> docs = c.getValue();
          compare(t.getKey(), c.getKey(), hanlin, hf, docs);
          long bytes = 0;
          for (String d : docs) bytes += d.getBytes(StandardCharsets.UTF_8).length;
          long chars = docs.stream().mapToLong(d -> d.codePointCount(0, d.length())).sum();
          long tokens = 0;
          for (String d : docs) tokens += hanlin.encode(d, false, false).length;
          String name = t.getKey() + "|" + c.getKey();
          double tpc = (double) tokens / chars;
          row(
              "Hanlin (Java)",
              1,
              name,
              bytes,
              tokens,
              tpc,
              time(docs, 1, seconds, d -> hanlin.encode(d, false, false)));
          row(
              "Hanlin (Java)",
              threads,
              name,
              bytes,
              tokens,
              tpc,
              time(docs, threads, seconds, d -> hanlin.encode(d, false, false)));
          row(
              "HF tokenizers (Rust, DJL 0.36.0)",
              1,
              name,
              bytes,
              tokens,
              tpc,
              time(docs, 1, seconds, hf::encode));
          row(
              "HF tokenizers (Rust, DJL 0.36.0)",
              threads,
              name,
              bytes,
              tokens,
              tpc,
              time(docs, threads, seconds, hf::encode));
          List<int[]> ids = docs.stream().map(d -> hanlin.encode(d, false, false)).toList();
          double[] dec = timeDecode(hanlin, ids, seconds);
          System.out.printf("DECODE|Hanlin (Java)|1|%s|%.1f%n", name, bytes / 1e6 / dec[0]);
        }
      }
    }
  }

  private static void row(
      String impl, int threads, String name, long bytes, long tokens, double tpc, double secs) {
    System.out.printf(
        "ROW|%s|%d|%s|%.1f|%.2f|%.3f%n",
        impl, threads, name, bytes / 1e6 / secs, tokens / 1e6 / secs, tpc);
    System.out.flush();
  }

  /**
   * Seconds per pass over all docs after one warm-up pass. One thread: that thread's CPU time, so
   * that other work on a shared machine does not count; several: wall-clock time.
   */
  private static double time(List<String> docs, int threads, double minSeconds, Consumer<String> f)
      throws InterruptedException {
    if (threads == 1) {
      ThreadMXBean mx = ManagementFactory.getThreadMXBean();
      docs.forEach(f);
      long start = mx.getCurrentThreadCpuTime();
      for (int passes = 1; ; passes++) {
        docs.forEach(f);
        double s = (mx.getCurrentThreadCpuTime() - start) / 1e9;
        if (s >= minSeconds) return s / passes;
      }
    }
    int passes = 0;
    long start = 0;
    for (int pass = -1; ; pass++) {
      if (pass == 0) start = System.nanoTime();
      Thread[] ts = new Thread[threads];
      for (int k = 0; k < threads; k++) {
        int from = (int) ((long) docs.size() * k / threads);
        int to = (int) ((long) docs.size() * (k + 1) / threads);
        ts[k] = Thread.ofPlatform().start(() -> docs.subList(from, to).forEach(f));
      }
      for (Thread t : ts) t.join();
      if (pass >= 0) {
        passes++;
        double s = (System.nanoTime() - start) / 1e9;
        if (s >= minSeconds) return s / passes;
      }
    }
  }

  private static double[] timeDecode(Tokenizer t, List<int[]> ids, double minSeconds) {
    ThreadMXBean mx = ManagementFactory.getThreadMXBean();
    ids.forEach(t::decode);
    long start = mx.getCurrentThreadCpuTime();
    int passes = 0;
    while (true) {
      ids.forEach(t::decode);
      passes++;
      double s = (mx.getCurrentThreadCpuTime() - start) / 1e9;
      if (s >= minSeconds) return new double[] {s / passes};
    }
  }

  /** Counts documents where HF tokenizers and Hanlin disagree; shows the first few. */
  private static void compare(
      String tok, String corpus, Tokenizer hanlin, HuggingFaceTokenizer hf, List<String> docs) {
    int differ = 0;
    StringBuilder first = new StringBuilder();
    for (String d : docs) {
      int[] a = hanlin.encode(d, false, false);
      Encoding e = hf.encode(d);
      long[] b = e.getIds();
      int[] bi = new int[b.length];
      for (int i = 0; i < b.length; i++) bi[i] = (int) b[i];
      if (!Arrays.equals(a, bi)) {
        if (differ++ < 3) {
          String s = d.length() > 80 ? d.substring(0, 80) : d;
          first.append(
              String.format(
                  "  %s%n    hanlin %s%n    hf     %s%n",
                  s.replace("\n", "\\n"), head(a), head(bi)));
        }
      }
    }
    System.out.printf(
        "PARITY|%s|%s|%d|%d%n%s", tok, corpus, docs.size() - differ, docs.size(), first);
  }

  private static String head(int[] a) {
    return Arrays.toString(a.length > 24 ? Arrays.copyOf(a, 24) : a);
  }

  static List<String> read(Path f) throws IOException {
    List<String> docs = new ArrayList<>();
    if (f.toString().endsWith(".jsonl")) {
      for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
        if (!line.isBlank()) docs.add(JSON.readTree(line).get("t").asText());
      }
    } else {
      for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
        if (!line.isEmpty()) docs.add(line);
      }
    }
    return docs;
  }
}
