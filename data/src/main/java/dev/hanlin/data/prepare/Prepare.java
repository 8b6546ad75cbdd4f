package dev.hanlin.data.prepare;

import dev.hanlin.data.DataException;
import dev.hanlin.data.Permutation;
import dev.hanlin.data.shard.Manifest;
import dev.hanlin.data.shard.Manifest.Counts;
import dev.hanlin.data.shard.Manifest.ShardEntry;
import dev.hanlin.data.shard.Manifest.SourceEntry;
import dev.hanlin.data.shard.ShardFormat;
import dev.hanlin.data.shard.ShardReader;
import dev.hanlin.data.shard.ShardWriter;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

/**
 * {@code --mode prepare}: raw corpora into token shards, once.
 *
 * <p>One reader thread walks the inputs in order, cuts documents, decides each one's split and
 * counts every bad record; a pool of workers tokenizes batches of documents (BOS + text + EOS, the
 * tokenizer adding both exactly once); this thread writes the results in input order, so the shards
 * are the same whatever the number of workers. Each input gets its own shards, written atomically,
 * and {@code manifest.json} records it with its size and mtime: a re-run reuses every input whose
 * key (path, size, mtime, tokenizer, options) is unchanged, and an interrupted run resumes from the
 * last manifest it wrote.
 */
public final class Prepare {
  private Prepare() {}

  public static final String SHARD_DIR = "shards";
  private static final int MAX_PROBLEMS = 100;
  private static final int MAX_SOURCE_PROBLEMS = 20;
  private static final int BATCH_CHARS = 1 << 18;
  private static final int BATCH_DOCS = 4096;

  enum Role {
    TRAIN,
    VALIDATION;

    String key() {
      return this == TRAIN ? "train" : "validation";
    }
  }

  record Input(Path path, Role role, long size, long mtimeMillis) {}

  /**
   * What a run did.
   *
   * @param reused inputs whose shards were kept from an earlier run
   * @param processed inputs tokenized in this run
   * @param unread inputs not read because {@code max_*_samples} was reached
   */
  public record Result(
      Manifest manifest,
      int reused,
      int processed,
      int unread,
      double seconds,
      long bytesProcessed,
      long tokensProcessed) {

    public double megabytesPerSecond() {
      return bytesProcessed / Math.max(1e-9, seconds) / 1e6;
    }

    public double tokensPerSecond() {
      return tokensProcessed / Math.max(1e-9, seconds);
    }

    /** Every count, for the end of the run. */
    public String summary() {
      Counts c = manifest.counts();
      StringBuilder b = new StringBuilder();
      b.append(
          String.format(
              Locale.ROOT,
              "prepare: %d inputs tokenized, %d unchanged and reused, %d not read (sample limits)"
                  + " in %.1f s (%.2f MB/s, %s tokens/s)%n",
              processed,
              reused,
              unread,
              seconds,
              megabytesPerSecond(),
              Progress.human(tokensPerSecond())));
      b.append(
          String.format(
              Locale.ROOT,
              "  train:      %,d documents, %,d tokens, %d shards%n"
                  + "  validation: %,d documents, %,d tokens, %d shards%n",
              c.trainDocuments(),
              c.trainTokens(),
              manifest.splits().train().shards(),
              c.validationDocuments(),
              c.validationTokens(),
              manifest.splits().validation().shards()));
      b.append(
          String.format(
              Locale.ROOT,
              "  records read %,d; empty documents skipped %,d; invalid UTF-8 sequences replaced"
                  + " %,d; malformed records skipped %,d; records missing the text field %,d;"
                  + " documents over max_*_samples %,d%n",
              c.records(),
              c.emptyDocuments(),
              c.invalidUtf8(),
              c.malformed(),
              c.missingField(),
              c.overLimit()));
      List<String> problems = manifest.problems();
      for (String p : problems.subList(0, Math.min(20, problems.size()))) {
        b.append("  ").append(p).append('\n');
      }
      if (problems.size() > 20) {
        b.append("  ... ")
            .append(problems.size() - 20)
            .append(" more listed in ")
            .append(Manifest.FILE_NAME)
            .append(" (problems, and per source)\n");
      }
      return b.toString();
    }
  }

  /**
   * Runs prepare with the tokenizer the config names; relative paths resolve against the working
   * directory. This is what {@code --mode prepare} calls.
   */
  public static Result run(PrepareConfig cfg, PrintStream err) throws IOException {
    return run(cfg, Tokenizer.load(Path.of(cfg.tokenizer())), err);
  }

  /** Runs prepare; relative inputs resolve against the working directory. */
  public static Result run(PrepareConfig cfg, Tokenizer tokenizer, PrintStream err)
      throws IOException {
    return run(cfg, tokenizer, Path.of("").toAbsolutePath(), err);
  }

  public static Result run(PrepareConfig cfg, Tokenizer tokenizer, Path base, PrintStream err)
      throws IOException {
    return new Run(cfg, tokenizer, base, err, BATCH_DOCS).run();
  }

  /**
   * As {@link #run}, with at most {@code batchDocs} documents per tokenizer batch (tests; public
   * for the loader's tests in another package).
   */
  public static Result run(
      PrepareConfig cfg, Tokenizer tokenizer, Path base, PrintStream err, int batchDocs)
      throws IOException {
    return new Run(cfg, tokenizer, base, err, batchDocs).run();
  }

  // ---- items passed from the reader to the writer, in input order ----

  private sealed interface Item {}

  private record Begin(Input input, String key, Manifest.Partial resume) implements Item {}

  /** The reader's state after a chunk: a checkpoint after it can resume reading from here. */
  private record ReaderState(
      long nextRecord,
      long[] counts,
      long trainDocs,
      long validationDocs,
      long bad,
      List<String> problems) {}

  private record Chunk(Future<int[][]> tokens, boolean[] validation, long bytes, ReaderState after)
      implements Item {}

  private record End(Counts counts, List<String> problems) implements Item {}

  private record Reused(Input input, SourceEntry entry) implements Item {}

  private record Failed(Throwable error) implements Item {}

  private record Finished(int unread) implements Item {}

  /** Thrown inside the reader to stop reading once the sample limits are reached. */
  private static final class LimitReached extends RuntimeException {
    LimitReached() {
      super(null, null, false, false);
    }
  }

  private static final class Run {
    final PrepareConfig cfg;
    final Tokenizer tokenizer;
    final Path base;
    final PrintStream err;
    final Path out;
    final Path shardDir;
    final int width;
    final String optionsHash;
    final Manifest.TokenizerInfo tokInfo;
    final BlockingQueue<Item> queue;
    final ExecutorService pool;
    final List<SourceEntry> done = new ArrayList<>();
    final List<String> problems = new ArrayList<>();
    Map<String, SourceEntry> previous = Map.of();
    List<Input> inputs;
    Progress progress;
    volatile long badSoFar;

    final int batchDocs;
    Manifest.Partial previousPartial;
    Manifest.Partial partial;

    Run(PrepareConfig cfg, Tokenizer tokenizer, Path base, PrintStream err, int batchDocs) {
      this.cfg = cfg;
      this.batchDocs = batchDocs;
      this.tokenizer = tokenizer;
      this.base = base;
      this.err = err;
      this.out = base.resolve(cfg.outputDir()).normalize();
      this.shardDir = out.resolve(SHARD_DIR);
      this.width = ShardFormat.widthFor(tokenizer.vocabSize());
      this.tokInfo =
          new Manifest.TokenizerInfo(
              tokenizer.fingerprint(), tokenizer.vocabSize(), tokenizer.bosId(), tokenizer.eosId());
      this.optionsHash =
          sha256(
              String.join(
                  "\u0000",
                  "v2", // v2: the split is decided by the document's text, not its file's path
                  tokenizer.fingerprint(),
                  String.valueOf(width),
                  cfg.textField(),
                  cfg.txtDocument(),
                  String.valueOf(cfg.keepLinebreaks()),
                  String.valueOf(cfg.validationSplitPercentage()),
                  String.valueOf(cfg.seed()),
                  String.valueOf(cfg.shardTokens()),
                  String.valueOf(cfg.maxTrainSamples()),
                  String.valueOf(cfg.maxEvalSamples())));
      this.queue = new ArrayBlockingQueue<>(2 * cfg.workers() + 4);
      this.pool =
          Executors.newFixedThreadPool(
              cfg.workers(), Thread.ofPlatform().daemon().name("tokenize-", 0).factory());
    }

    Result run() throws IOException {
      Files.createDirectories(shardDir);
      try (FileChannel lockFile =
              FileChannel.open(
                  out.resolve(".prepare.lock"),
                  StandardOpenOption.CREATE,
                  StandardOpenOption.WRITE);
          FileLock lock = tryLock(lockFile)) {
        return locked();
      }
    }

    /** One prepare at a time per output folder, across processes and threads. */
    private FileLock tryLock(FileChannel ch) throws IOException {
      FileLock l;
      try {
        l = ch.tryLock();
      } catch (OverlappingFileLockException e) {
        l = null;
      }
      if (l == null) {
        throw new DataException(
            "another prepare is writing to " + out + " (.prepare.lock is held)");
      }
      return l;
    }

    private Result locked() throws IOException {
      deleteTemps();
      loadPrevious();
      inputs = new ArrayList<>();
      Set<Path> seen = new HashSet<>();
      for (Path p : Sources.expand(cfg.trainFiles(), base, cfg.textField())) {
        seen.add(p);
        inputs.add(input(p, Role.TRAIN));
      }
      for (Path p : Sources.expand(cfg.validationFiles(), base, cfg.textField())) {
        if (!seen.add(p)) {
          throw new DataException(p + " is listed both as train and as validation input");
        }
        inputs.add(input(p, Role.VALIDATION));
      }
      long totalBytes = inputs.stream().mapToLong(Input::size).sum();
      progress = new Progress(inputs.size(), totalBytes, err, cfg.progress());
      Thread reader = Thread.ofPlatform().name("prepare-reader").start(this::read);
      int unread;
      try {
        unread = write();
      } catch (IOException | RuntimeException | Error e) {
        reader.interrupt();
        pool.shutdownNow();
        progress.close();
        writeManifest(false);
        throw e;
      } finally {
        pool.shutdownNow();
      }
      progress.close();
      Manifest m = writeManifest(true);
      cleanup(m);
      return new Result(
          m,
          (int) done.stream().filter(this::wasReused).count(),
          processedCount,
          unread,
          progress.seconds(),
          progress.bytes.get(),
          progress.tokens.get());
    }

    private final Set<String> reusedKeys = new HashSet<>();
    private int processedCount;

    private boolean wasReused(SourceEntry e) {
      return reusedKeys.contains(e.key());
    }

    private Input input(Path p, Role role) throws IOException {
      return new Input(p, role, Files.size(p), Files.getLastModifiedTime(p).toMillis());
    }

    private void deleteTemps() throws IOException {
      for (Path dir : List.of(out, shardDir)) {
        try (Stream<Path> s = Files.list(dir)) {
          for (Path p : s.filter(x -> x.getFileName().toString().endsWith(".tmp")).toList()) {
            Files.deleteIfExists(p);
          }
        }
      }
    }

    private void loadPrevious() {
      if (!Files.isRegularFile(out.resolve(Manifest.FILE_NAME))) return;
      try {
        Manifest m = Manifest.read(out);
        if (m.tokenizer() == null || !tokenizer.fingerprint().equals(m.tokenizer().fingerprint())) {
          return;
        }
        Map<String, SourceEntry> byKey = new HashMap<>();
        for (List<SourceEntry> l : java.util.Arrays.asList(m.sources(), m.pending())) {
          if (l != null) for (SourceEntry e : l) byKey.put(e.key(), e);
        }
        previous = byKey;
        previousPartial = m.partial();
      } catch (IOException | RuntimeException e) {
        err.println("prepare: ignoring unreadable " + Manifest.FILE_NAME + ": " + e.getMessage());
      }
    }

    /**
     * The shards of {@code e} are all present and sound (header checks; version 1: a full read).
     */
    private boolean usable(SourceEntry e) {
      List<ShardEntry> all = new ArrayList<>();
      if (e.train() != null) all.addAll(e.train());
      if (e.validation() != null) all.addAll(e.validation());
      for (ShardEntry s : all) {
        Path file = out.resolve(s.file());
        if (!Files.exists(file)) return false; // removed by hand: nothing to say
        try (ShardReader r = ShardReader.open(file, tokenizer.fingerprint())) {
          if (r.tokenCount() != s.tokens() || r.documentCount() != s.documents()) {
            err.printf(
                "prepare: %s holds %,d tokens in %,d documents where %s says %,d in %,d;"
                    + " tokenizing %s again%n",
                file,
                r.tokenCount(),
                r.documentCount(),
                Manifest.FILE_NAME,
                s.tokens(),
                s.documents(),
                e.path());
            return false;
          }
        } catch (IOException | RuntimeException ex) {
          // damaged since it was written: say so, then make it again from the raw input
          err.printf(
              "prepare: %s is damaged (%s); tokenizing %s again%n",
              file, ex.getMessage(), e.path());
          return false;
        }
      }
      return true;
    }

    // ---- reader thread ----

    private long trainDocs;
    private long validationDocs;

    private boolean wants(Role role) {
      boolean train =
          role == Role.TRAIN
              && (cfg.maxTrainSamples() == null || trainDocs < cfg.maxTrainSamples());
      boolean validation =
          (role == Role.VALIDATION || cfg.validationSplitPercentage() > 0)
              && (cfg.maxEvalSamples() == null || validationDocs < cfg.maxEvalSamples());
      return train || validation;
    }

    private void read() {
      try {
        int unread = 0;
        for (Input in : inputs) {
          if (!wants(in.role())) {
            unread++;
            continue;
          }
          String key = sourceKey(in);
          SourceEntry prev = previous.get(key);
          if (prev != null && usable(prev)) {
            trainDocs += prev.counts().trainDocuments();
            validationDocs += prev.counts().validationDocuments();
            badSoFar += prev.counts().malformed() + prev.counts().missingField();
            put(new Reused(in, prev));
            continue;
          }
          Manifest.Partial resume =
              previousPartial != null
                      && previousPartial.entry().key().equals(key)
                      && usable(previousPartial.entry())
                  ? previousPartial
                  : null;
          if (resume != null) {
            trainDocs = resume.trainDocumentsTotal();
            validationDocs = resume.validationDocumentsTotal();
            badSoFar = resume.badRecordsTotal();
          }
          put(new Begin(in, key, resume));
          readSource(in, resume);
        }
        put(new Finished(unread));
      } catch (InterruptedException e) {
        // the writer failed and stopped us
      } catch (Throwable t) {
        try {
          put(new Failed(t));
        } catch (InterruptedException ignored) {
          // the writer is gone
        }
      }
    }

    private void put(Item item) throws InterruptedException {
      queue.put(item);
    }

    private String sourceKey(Input in) {
      boolean limited = cfg.maxTrainSamples() != null || cfg.maxEvalSamples() != null;
      return sha256(
          String.join(
              "\u0000",
              in.path().toString(),
              in.role().key(),
              String.valueOf(in.size()),
              String.valueOf(in.mtimeMillis()),
              optionsHash,
              limited ? trainDocs + "/" + validationDocs : ""));
    }

    private void readSource(Input in, Manifest.Partial resume)
        throws IOException, InterruptedException {
      DocumentReader dr;
      try {
        dr = new DocumentReader(in.path(), cfg.readerOptions());
      } catch (IOException e) {
        throw new IOException("cannot read input " + in.path() + ": " + e.getMessage(), e);
      }
      long[] c = new long[5]; // records, empty, malformed, missing, overLimit
      List<String> srcProblems = new ArrayList<>();
      long skip = 0;
      if (resume != null) {
        Counts rc = resume.entry().counts();
        c[0] = rc.records();
        c[1] = rc.emptyDocuments();
        c[2] = rc.malformed();
        c[3] = rc.missingField();
        c[4] = rc.overLimit();
        srcProblems.addAll(resume.entry().problems());
        skip = resume.nextRecord();
      }
      final long skipRecords = skip;
      long splitSeed = Permutation.mix(cfg.seed() * 0x9E3779B97F4A7C15L);
      var batch =
          new Object() {
            List<String> texts = new ArrayList<>();
            List<Boolean> validation = new ArrayList<>();
            long chars;
            long bytesAtLastFlush;
            long ordinal;
          };
      Runnable flush =
          () -> {
            if (batch.texts.isEmpty()) return;
            List<String> texts = batch.texts;
            boolean[] val = new boolean[texts.size()];
            for (int i = 0; i < val.length; i++) val[i] = batch.validation.get(i);
            Future<int[][]> f = pool.submit(() -> encode(texts));
            long bytes = dr.bytesRead() - batch.bytesAtLastFlush;
            batch.bytesAtLastFlush = dr.bytesRead();
            ReaderState state =
                new ReaderState(
                    batch.ordinal,
                    c.clone(),
                    trainDocs,
                    validationDocs,
                    badSoFar,
                    List.copyOf(srcProblems));
            try {
              put(new Chunk(f, val, bytes, state));
            } catch (InterruptedException e) {
              throw new RuntimeException(e);
            }
            batch.texts = new ArrayList<>();
            batch.validation = new ArrayList<>();
            batch.chars = 0;
          };
      DocumentReader.Sink sink =
          new DocumentReader.Sink() {
            @Override
            public void document(String text, long line) {
              long ordinal = batch.ordinal++;
              if (ordinal < skipRecords) return; // written before the interruption
              c[0]++;
              if (text.isBlank()) {
                c[1]++;
                return;
              }
              boolean val =
                  in.role() == Role.VALIDATION
                      || (cfg.validationSplitPercentage() > 0
                          && inValidation(splitSeed, text, cfg.validationSplitPercentage()));
              if (val) {
                if (cfg.maxEvalSamples() != null && validationDocs >= cfg.maxEvalSamples()) {
                  c[4]++;
                  if (!wants(in.role())) throw new LimitReached();
                  return;
                }
                validationDocs++;
              } else {
                if (cfg.maxTrainSamples() != null && trainDocs >= cfg.maxTrainSamples()) {
                  c[4]++;
                  if (!wants(in.role())) throw new LimitReached();
                  return;
                }
                trainDocs++;
              }
              batch.texts.add(text);
              batch.validation.add(val);
              batch.chars += text.length();
              if (batch.chars >= BATCH_CHARS || batch.texts.size() >= batchDocs) flush.run();
            }

            @Override
            public void bad(DocumentReader.Bad kind, long line, String detail) {
              if (batch.ordinal++ < skipRecords) return;
              c[0]++;
              c[kind == DocumentReader.Bad.MALFORMED ? 2 : 3]++;
              String p =
                  in.path()
                      + ":"
                      + line
                      + ": "
                      + (kind == DocumentReader.Bad.MALFORMED ? "malformed record: " : "")
                      + detail;
              if (srcProblems.size() < MAX_SOURCE_PROBLEMS) srcProblems.add(p);
              badSoFar++;
              if (badSoFar > cfg.maxBadRecords()) {
                throw new DataException(
                    "more than max_bad_records = "
                        + cfg.maxBadRecords()
                        + " malformed records or records without the text field; the latest: "
                        + p);
              }
            }
          };
      try {
        dr.readAll(sink);
      } catch (LimitReached e) {
        // the sample limits are reached: the rest of this input is not needed
      } catch (IOException e) {
        throw new IOException("cannot read input " + in.path() + ": " + e.getMessage(), e);
      } catch (RuntimeException e) {
        if (e.getCause() instanceof InterruptedException ie) throw ie;
        throw e;
      }
      flush.run();
      if (dr.invalidUtf8() > 0 && srcProblems.size() < MAX_SOURCE_PROBLEMS) {
        srcProblems.add(
            dr.firstInvalidUtf8()
                + ": invalid UTF-8, the first of "
                + dr.invalidUtf8()
                + " malformed sequences in this file replaced by U+FFFD");
      }
      long rest = dr.bytesRead() - batch.bytesAtLastFlush;
      put(
          new End(
              new Counts(
                  c[0], 0, 0, 0, 0, c[1], dr.invalidUtf8(), c[2], c[3], c[4], dr.bytesRead()),
              List.copyOf(srcProblems)));
      if (rest > 0) progress.bytes.addAndGet(rest);
    }

    private int[][] encode(List<String> texts) {
      int[][] out = new int[texts.size()][];
      for (int i = 0; i < out.length; i++) out[i] = tokenizer.encode(texts.get(i), true, true);
      return out;
    }

    // ---- writer (this thread) ----

    private long lastManifestWrite = System.nanoTime();

    private int write() throws IOException {
      Input current = null;
      String currentKey = null;
      SplitWriter[] writers = null;
      try {
        while (true) {
          Item item;
          try {
            item = queue.take();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("prepare interrupted", e);
          }
          switch (item) {
            case Failed f -> {
              if (f.error() instanceof IOException io) throw io;
              if (f.error() instanceof RuntimeException re) throw re;
              if (f.error() instanceof Error er) throw er;
              throw new IOException(f.error());
            }
            case Finished f -> {
              return f.unread();
            }
            case Reused r -> {
              done.add(r.entry());
              reusedKeys.add(r.entry().key());
              progress.skip(r.input().size());
              maybeWriteManifest();
            }
            case Begin b -> {
              current = b.input();
              currentKey = b.key();
              String stem = stem(current);
              writers =
                  new SplitWriter[] {new SplitWriter(stem, "train"), new SplitWriter(stem, "val")};
              if (b.resume() != null) {
                SourceEntry e = b.resume().entry();
                writers[0].resume(e.train(), e.counts().trainDocuments(), e.counts().trainTokens());
                writers[1].resume(
                    e.validation(),
                    e.counts().validationDocuments(),
                    e.counts().validationTokens());
                partial = b.resume();
              }
            }
            case Chunk ch -> {
              int[][] docs;
              try {
                docs = ch.tokens().get();
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("prepare interrupted", e);
              } catch (ExecutionException e) {
                throw new DataException(
                    "tokenizing " + current.path() + " failed: " + e.getCause(), e.getCause());
              }
              long n = 0;
              for (int i = 0; i < docs.length; i++) {
                writers[ch.validation()[i] ? 1 : 0].add(docs[i]);
                n += docs[i].length;
              }
              progress.tokens.addAndGet(n);
              progress.bytes.addAndGet(ch.bytes());
              if (writers[0].full() || writers[1].full()) {
                checkpoint(current, currentKey, writers, ch.after());
              }
            }
            case End e -> {
              List<ShardEntry> train = writers[0].finish();
              List<ShardEntry> val = writers[1].finish();
              Counts rc = e.counts();
              Counts counts =
                  new Counts(
                      rc.records(),
                      writers[0].docs,
                      writers[1].docs,
                      writers[0].tokens,
                      writers[1].tokens,
                      rc.emptyDocuments(),
                      rc.invalidUtf8(),
                      rc.malformed(),
                      rc.missingField(),
                      rc.overLimit(),
                      rc.bytes());
              done.add(
                  new SourceEntry(
                      current.path().toString(),
                      current.role().key(),
                      current.size(),
                      current.mtimeMillis(),
                      currentKey,
                      counts,
                      train,
                      val,
                      e.problems()));
              writers = null;
              partial = null;
              processedCount++;
              progress.files.incrementAndGet();
              maybeWriteManifest();
            }
          }
        }
      } finally {
        if (writers != null) {
          for (SplitWriter w : writers) w.abort();
        }
      }
    }

    /**
     * Closes the open shards of the current input and records how far it got, so an interrupted run
     * goes on from here rather than from the start of a large input.
     */
    private void checkpoint(Input in, String key, SplitWriter[] writers, ReaderState s)
        throws IOException {
      List<ShardEntry> train = writers[0].finish();
      List<ShardEntry> val = writers[1].finish();
      long[] c = s.counts();
      Counts counts =
          new Counts(
              c[0],
              writers[0].docs,
              writers[1].docs,
              writers[0].tokens,
              writers[1].tokens,
              c[1],
              0,
              c[2],
              c[3],
              c[4],
              0);
      partial =
          new Manifest.Partial(
              new SourceEntry(
                  in.path().toString(),
                  in.role().key(),
                  in.size(),
                  in.mtimeMillis(),
                  key,
                  counts,
                  train,
                  val,
                  s.problems()),
              s.nextRecord(),
              s.trainDocs(),
              s.validationDocs(),
              s.bad());
      writeManifest(false);
      lastManifestWrite = System.nanoTime();
    }

    private void maybeWriteManifest() throws IOException {
      if (System.nanoTime() - lastManifestWrite > 2_000_000_000L) {
        writeManifest(false);
        lastManifestWrite = System.nanoTime();
      }
    }

    private Manifest writeManifest(boolean complete) throws IOException {
      List<SourceEntry> pending = null;
      if (!complete) {
        Set<String> have = new HashSet<>();
        for (SourceEntry e : done) have.add(e.key());
        pending = new ArrayList<>();
        for (SourceEntry e : previous.values()) if (!have.contains(e.key())) pending.add(e);
      }
      Counts total = Counts.ZERO;
      int trainShards = 0;
      int valShards = 0;
      problems.clear();
      for (SourceEntry e : done) {
        total = total.plus(e.counts());
        trainShards += e.train().size();
        valShards += e.validation().size();
        for (String p : e.problems()) if (problems.size() < MAX_PROBLEMS) problems.add(p);
      }
      if (total.invalidUtf8() > 0) {
        for (SourceEntry e : done) {
          // Sources read by this build say where (above); ones from an older manifest only count.
          boolean located = e.problems().stream().anyMatch(p -> p.contains(": invalid UTF-8,"));
          if (e.counts().invalidUtf8() > 0 && !located && problems.size() < MAX_PROBLEMS) {
            problems.add(
                e.path()
                    + ": "
                    + e.counts().invalidUtf8()
                    + " invalid UTF-8 sequences replaced by U+FFFD");
          }
        }
      }
      Manifest m =
          new Manifest(
              Manifest.FORMAT,
              Manifest.VERSION,
              complete,
              tokInfo,
              ShardFormat.dtypeName(width),
              optionsHash,
              cfg,
              new Manifest.Splits(
                  new Manifest.SplitTotals(
                      total.trainDocuments(), total.trainTokens(), trainShards),
                  new Manifest.SplitTotals(
                      total.validationDocuments(), total.validationTokens(), valShards)),
              total,
              List.copyOf(done),
              pending,
              complete ? null : partialToKeep(),
              List.copyOf(problems));
      m.write(out);
      return m;
    }

    /**
     * The partial entry an interrupted run leaves: the input in progress, else the previous run's
     * partial if this run has not reached (or has not finished) that input yet, so that a second
     * interruption does not lose the first one's work.
     */
    private Manifest.Partial partialToKeep() {
      if (partial != null) return partial;
      if (previousPartial == null) return null;
      String key = previousPartial.entry().key();
      return done.stream().anyMatch(e -> e.key().equals(key)) ? null : previousPartial;
    }

    /** Deletes shard files that the final manifest does not list (from changed inputs). */
    private void cleanup(Manifest m) throws IOException {
      Set<String> keep = new HashSet<>();
      for (String split : List.of("train", "validation")) {
        for (ShardEntry s : m.shards(split)) keep.add(out.resolve(s.file()).normalize().toString());
      }
      try (Stream<Path> s = Files.list(shardDir)) {
        for (Path p : s.toList()) {
          if (p.getFileName().toString().endsWith(ShardFormat.EXTENSION)
              && !keep.contains(p.normalize().toString())) {
            Files.deleteIfExists(p);
          }
        }
      }
    }

    private String stem(Input in) {
      String name = in.path().getFileName().toString().replaceAll("[^A-Za-z0-9._-]", "_");
      if (name.length() > 60) name = name.substring(0, 60);
      return name + "-" + sha256(in.path() + "\u0000" + in.role().key()).substring(0, 10);
    }

    /** The shards of one split of one input, closed every {@code shard_tokens}. */
    private final class SplitWriter {
      final String stem;
      final String split;
      final List<ShardEntry> finished = new ArrayList<>();
      ShardWriter cur;
      String curName;
      long docs;
      long tokens;

      SplitWriter(String stem, String split) {
        this.stem = stem;
        this.split = split;
      }

      void add(int[] doc) throws IOException {
        if (cur == null) {
          curName =
              SHARD_DIR
                  + "/"
                  + stem
                  + "."
                  + split
                  + "."
                  + String.format(Locale.ROOT, "%04d", finished.size())
                  + ShardFormat.EXTENSION;
          cur =
              new ShardWriter(
                  out.resolve(curName), width, tokenizer.vocabSize(), tokenizer.fingerprint());
        }
        cur.add(doc);
        docs++;
        tokens += doc.length;
      }

      /** The open shard has reached shard_tokens (shards close at chunk boundaries). */
      boolean full() {
        return cur != null && cur.tokens() >= cfg.shardTokens();
      }

      /** Continues after the shards an interrupted run had finished. */
      void resume(List<ShardEntry> done, long docs, long tokens) {
        finished.addAll(done);
        this.docs = docs;
        this.tokens = tokens;
      }

      private void close() throws IOException {
        var h = cur.finish();
        finished.add(new ShardEntry(curName, h.tokens(), h.documents()));
        cur = null;
      }

      List<ShardEntry> finish() throws IOException {
        if (cur != null) close();
        return List.copyOf(finished);
      }

      void abort() throws IOException {
        if (cur != null) cur.close();
      }
    }
  }

  // ---- hashing ----

  /**
   * Whether a document goes to the validation split: decided by the seed and the document's text
   * alone, not by the file's path or the document's position, so the same corpus splits the same
   * wherever it lies and however its files are named or ordered (and duplicates of a text all land
   * on one side).
   */
  static boolean inValidation(long splitSeed, String text, double percentage) {
    return unit(Permutation.mix(splitSeed + textHash(text))) * 100 < percentage;
  }

  /** FNV-1a over the text's UTF-16 units: fast, stable across platforms and runs. */
  static long textHash(String text) {
    long h = 0xCBF29CE484222325L;
    for (int i = 0; i < text.length(); i++) h = (h ^ text.charAt(i)) * 0x100000001B3L;
    return Permutation.mix(h);
  }

  static String sha256(String s) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  static long hash64(String s) {
    return Long.parseUnsignedLong(sha256(s).substring(0, 16), 16);
  }

  /** A uniform double in [0, 1) from 64 random bits. */
  static double unit(long bits) {
    return (bits >>> 11) * 0x1.0p-53;
  }
}
