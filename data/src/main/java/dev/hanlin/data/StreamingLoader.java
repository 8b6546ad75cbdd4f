package dev.hanlin.data;

import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@code streaming: true}: for corpora too large to prepare first. Background threads read the
 * input files in order, tokenize documents (BOS + text + EOS) on a pool of workers, and pack the
 * token stream into {@code block_size + 1} windows (neighbours sharing one token, as in {@link
 * BlockSampler}). Windows are gathered into buffers of {@code shuffle_buffer} windows (rounded up
 * to a multiple of the global batch); each buffer is shuffled with a seed from (seed, epoch, buffer
 * index) and dealt out a global batch at a time, rank r taking its r-th slice, so the order is the
 * same for any number of ranks with the same global batch and the shares are disjoint. The next
 * buffer is built while the current one is consumed. A {@link StreamCursor} resumes exactly; the
 * remainder is dropped once per epoch.
 *
 * <p>Every rank reads and tokenizes the whole stream (and keeps only its share): simple and
 * world-size independent, at the cost of world-size times the tokenizer work.
 */
public final class StreamingLoader implements AutoCloseable {

  /**
   * @param blockSize tokens per example T
   * @param batchSize blocks per step on this rank
   * @param seed seeds every buffer's shuffle
   * @param shuffleBuffer windows per shuffle buffer (rounded up to a multiple of batch × world)
   * @param shuffleFiles read the files in an order drawn from (seed, epoch), as HF's streaming
   *     shuffle does with shards; false keeps the given order
   * @param rank this process's rank
   * @param worldSize number of ranks
   * @param workers tokenizer threads
   * @param device where batches go
   */
  public record Options(
      int blockSize,
      int batchSize,
      long seed,
      int shuffleBuffer,
      boolean shuffleFiles,
      int rank,
      int worldSize,
      int workers,
      Device device) {
    public Options {
      if (blockSize < 1 || batchSize < 1 || shuffleBuffer < 1 || workers < 1) {
        throw new IllegalArgumentException(this.toString());
      }
      if (worldSize < 1 || rank < 0 || rank >= worldSize) {
        throw new IllegalArgumentException("rank " + rank + " of world size " + worldSize);
      }
      if (device == null) device = Device.CPU;
    }

    public static Options of(int blockSize, int batchSize, long seed, int shuffleBuffer) {
      return new Options(blockSize, batchSize, seed, shuffleBuffer, true, 0, 1, 1, Device.CPU);
    }

    public Options withRank(int rank, int worldSize) {
      return new Options(
          blockSize,
          batchSize,
          seed,
          shuffleBuffer,
          shuffleFiles,
          rank,
          worldSize,
          workers,
          device);
    }

    public Options withShuffleFiles(boolean shuffleFiles) {
      return new Options(
          blockSize,
          batchSize,
          seed,
          shuffleBuffer,
          shuffleFiles,
          rank,
          worldSize,
          workers,
          device);
    }

    public Options withWorkers(int workers) {
      return new Options(
          blockSize,
          batchSize,
          seed,
          shuffleBuffer,
          shuffleFiles,
          rank,
          worldSize,
          workers,
          device);
    }
  }

  /** One step's blocks, (B, T + 1) int64, and the cursor after them. The caller closes it. */
  public record StreamBatch(Tensor tokens, StreamCursor cursor) implements AutoCloseable {
    @Override
    public void close() {
      tokens.close();
    }
  }

  /** A shuffled buffer: {@code windows} windows over {@code tokens}, dealt in {@code order}. */
  private record Generation(
      StreamCursor start, int[] tokens, int windows, int[] order, StreamCursor next) {}

  private record Failure(Throwable error) {}

  private final List<Path> files;
  private final DocumentReader.Options readerOptions;
  private final Tokenizer tokenizer;
  private final Options o;
  private final int global;
  private final int bufferWindows;
  private final ExecutorService pool;
  private final BlockingQueue<Object> generations = new ArrayBlockingQueue<>(1);
  private final Thread builder;
  private volatile Skipped skipped = new Skipped(0, 0, 0);
  private static final System.Logger LOG = System.getLogger(StreamingLoader.class.getName());
  private volatile boolean closed;
  private Generation current;
  private StreamCursor cursor;

  public StreamingLoader(
      List<Path> files,
      DocumentReader.Options readerOptions,
      Tokenizer tokenizer,
      Options options,
      StreamCursor start) {
    if (files.isEmpty()) throw new IllegalArgumentException("no input files");
    this.files = List.copyOf(files);
    this.readerOptions = readerOptions;
    this.tokenizer = tokenizer;
    this.o = options;
    this.global = options.batchSize() * options.worldSize();
    this.bufferWindows = (options.shuffleBuffer() + global - 1) / global * global;
    this.pool =
        Executors.newFixedThreadPool(
            options.workers(), Thread.ofPlatform().daemon().name("stream-tokenize-", 0).factory());
    this.cursor = start;
    this.builder = Thread.ofPlatform().daemon().name("stream-builder").start(() -> build(start));
  }

  /** Input files as prepare would expand them (files, folders, globs, CSV manifests). */
  public static List<Path> expand(List<String> inputs, Path base, String textField)
      throws IOException {
    return Sources.expand(inputs, base, textField);
  }

  /**
   * What was skipped so far (nothing is dropped silently): blank documents, malformed records or
   * records without the text field (the first 20 are logged with file:line), and invalid UTF-8
   * sequences replaced by U+FFFD. Counts are added when a file has been read, and grow with every
   * pass over the files.
   */
  public record Skipped(long emptyDocuments, long badRecords, long invalidUtf8) {}

  public Skipped skipped() {
    return skipped;
  }

  /** Windows per shuffle buffer after rounding to the global batch. */
  public int bufferWindows() {
    return bufferWindows;
  }

  /** Where the loader stands: after the last batch {@link #next()} returned. */
  public StreamCursor cursor() {
    return cursor;
  }

  /** The next batch; blocks while the buffer it needs is being built. */
  public StreamBatch next() {
    while (true) {
      if (current != null && sameStart(current.start(), cursor)) {
        if (cursor.position() + global <= usable(current)) break;
        cursor = current.next(); // this buffer is used up (or too small for one step)
      }
      current = take();
      if (!sameStart(current.start(), cursor)) {
        throw new IllegalStateException("stream out of step: " + current.start() + " vs " + cursor);
      }
    }
    int t = o.blockSize();
    long[] flat = new long[o.batchSize() * (t + 1)];
    long first = cursor.position() + (long) o.rank() * o.batchSize();
    for (int j = 0; j < o.batchSize(); j++) {
      int w = current.order()[(int) (first + j)];
      for (int k = 0; k <= t; k++) flat[j * (t + 1) + k] = current.tokens()[w * t + k];
    }
    StreamCursor after =
        new StreamCursor(
            cursor.epoch(),
            cursor.file(),
            cursor.record(),
            cursor.skip(),
            cursor.generation(),
            cursor.position() + global);
    if (after.position() + global > usable(current)) after = current.next();
    cursor = after;
    try (Scope s = Scope.open()) {
      Tensor host = Torch.fromLongs(flat, o.batchSize(), t + 1);
      Tensor out = o.device().isCuda() ? host.pinMemory().to(o.device(), DType.I64, true) : host;
      return new StreamBatch(s.keep(out), after);
    }
  }

  private long usable(Generation g) {
    return g.windows() / global * (long) global;
  }

  private static boolean sameStart(StreamCursor a, StreamCursor b) {
    return a.epoch() == b.epoch()
        && a.file() == b.file()
        && a.record() == b.record()
        && a.skip() == b.skip()
        && a.generation() == b.generation();
  }

  private Generation take() {
    Object x;
    try {
      x = generations.take();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new DataException("interrupted while waiting for data", e);
    }
    if (x instanceof Failure f) {
      throw new DataException("the streaming reader failed: " + f.error(), f.error());
    }
    return (Generation) x;
  }

  // ---- background: documents in order, tokenized by the pool ----

  /** A tokenized document and where it came from. */
  private record Doc(int file, long record, int[] tokens) {}

  private record Pending(List<Integer> files, List<Long> records, Future<int[][]> tokens) {}

  private static final Object EPOCH_END = new Object();

  /** Reads records from (file, record) onward, in order; EPOCH_END after the last file. */
  private final class DocStream {
    final BlockingQueue<Object> queue = new ArrayBlockingQueue<>(2 * o.workers() + 2);
    final Thread reader;
    final List<Doc> ready = new ArrayList<>();
    int readyPos;

    DocStream(long epoch, int file, long record) {
      int[] order = fileOrder(epoch);
      reader =
          Thread.ofPlatform()
              .daemon()
              .name("stream-reader")
              .start(() -> readFrom(order, file, record));
    }

    /** Reads files {@code order[startFile..]}; Doc.file is the position in {@code order}. */
    private void readFrom(int[] order, int startFile, long startRecord) {
      try {
        for (int f = startFile; f < files.size(); f++) {
          final Path path = files.get(order[f]);
          final int fi = f;
          long skipUntil = f == startFile ? startRecord : 0;
          var batch =
              new Object() {
                List<String> texts = new ArrayList<>();
                List<Integer> fs = new ArrayList<>();
                List<Long> rs = new ArrayList<>();
                long chars;
                long ordinal;
                long empty;
                long bad;

                void flush() throws InterruptedException {
                  if (texts.isEmpty()) return;
                  List<String> tx = texts;
                  Future<int[][]> fut =
                      pool.submit(
                          () -> {
                            int[][] out = new int[tx.size()][];
                            for (int i = 0; i < out.length; i++) {
                              out[i] = tokenizer.encode(tx.get(i), true, true);
                            }
                            return out;
                          });
                  queue.put(new Pending(fs, rs, fut));
                  texts = new ArrayList<>();
                  fs = new ArrayList<>();
                  rs = new ArrayList<>();
                  chars = 0;
                }
              };
          DocumentReader dr = new DocumentReader(path, readerOptions);
          dr.readAll(
              new DocumentReader.Sink() {
                @Override
                public void document(String text, long line) {
                  long r = batch.ordinal++;
                  if (r < skipUntil) return;
                  if (text.isBlank()) {
                    batch.empty++;
                    return;
                  }
                  batch.texts.add(text);
                  batch.fs.add(fi);
                  batch.rs.add(r);
                  batch.chars += text.length();
                  if (batch.chars >= 1 << 16) {
                    try {
                      batch.flush();
                    } catch (InterruptedException e) {
                      throw new RuntimeException(e);
                    }
                  }
                }

                @Override
                public void bad(DocumentReader.Bad kind, long line, String detail) {
                  if (batch.ordinal >= skipUntil && skipped.badRecords() + ++batch.bad <= 20) {
                    LOG.log(
                        System.Logger.Level.WARNING,
                        "skipped {0} record at {1}:{2}: {3}",
                        kind == DocumentReader.Bad.MALFORMED ? "a malformed" : "a text-less",
                        path,
                        line,
                        detail);
                  }
                  batch.ordinal++; // counted in the ordinal so cursors stay valid; not a document
                }
              });
          batch.flush();
          synchronized (StreamingLoader.this) {
            Skipped k = skipped;
            skipped =
                new Skipped(
                    k.emptyDocuments() + batch.empty,
                    k.badRecords() + batch.bad,
                    k.invalidUtf8() + dr.invalidUtf8());
          }
          if (dr.invalidUtf8() > 0) {
            LOG.log(
                System.Logger.Level.WARNING,
                "{0}: {1} invalid UTF-8 sequences replaced by U+FFFD",
                path,
                dr.invalidUtf8());
          }
        }
        queue.put(EPOCH_END);
      } catch (InterruptedException e) {
        // closed
      } catch (Throwable t) {
        if (t.getCause() instanceof InterruptedException) return;
        try {
          queue.put(new Failure(t));
        } catch (InterruptedException ignored) {
          // closed
        }
      }
    }

    /** The next document, or null at the end of the epoch. */
    Doc next() throws InterruptedException, ExecutionException {
      while (readyPos == ready.size()) {
        ready.clear();
        readyPos = 0;
        Object x = queue.take();
        if (x == EPOCH_END) return null;
        if (x instanceof Failure f) throw new ExecutionException(f.error());
        Pending p = (Pending) x;
        int[][] toks = p.tokens().get();
        for (int i = 0; i < toks.length; i++) {
          ready.add(new Doc(p.files().get(i), p.records().get(i), toks[i]));
        }
      }
      return ready.get(readyPos++);
    }

    void close() {
      reader.interrupt();
    }
  }

  // ---- background: shuffle buffers ----

  private void build(StreamCursor start) {
    StreamCursor s = start;
    DocStream docs = null;
    Doc carry = null; // the document the next buffer starts in
    int carrySkip = 0;
    try {
      while (!closed) {
        if (docs == null) {
          docs = new DocStream(s.epoch(), s.file(), s.record());
          carry = null;
          carrySkip = s.skip();
        }
        int t = o.blockSize();
        int need = bufferWindows * t + 1;
        int[] tokens = new int[need];
        int have = 0;
        Doc d = carry;
        int off = carrySkip;
        StreamCursor next = null;
        while (true) {
          if (d == null || off >= d.tokens().length) {
            d = docs.next();
            off = 0;
            if (d == null) break; // end of epoch
            if (d.file() == s.file() && d.record() == s.record() && carry == null && have == 0) {
              off = s.skip(); // resuming inside a document
            }
          }
          int n = Math.min(need - have, d.tokens().length - off);
          System.arraycopy(d.tokens(), off, tokens, have, n);
          have += n;
          off += n;
          if (have == need) {
            // The last token of this buffer is the first of the next one.
            off--;
            next = new StreamCursor(s.epoch(), d.file(), d.record(), off, s.generation() + 1, 0);
            break;
          }
        }
        int windows = have < 1 ? 0 : (have - 1) / t;
        Generation g =
            new Generation(
                s,
                tokens,
                windows,
                shuffled(windows, s),
                next != null ? next : new StreamCursor(s.epoch() + 1, 0, 0, 0, 0, 0));
        if (next == null) {
          docs.close();
          docs = null;
          if (s.generation() == 0 && s.file() == 0 && s.record() == 0 && windows < global) {
            throw new DataException(
                "the streaming inputs hold "
                    + windows
                    + " blocks of block_size + 1 tokens, fewer than one global batch of "
                    + global);
          }
        } else {
          carry = d;
          carrySkip = off;
        }
        generations.put(g);
        s = g.next();
      }
    } catch (InterruptedException e) {
      // closed
    } catch (Throwable e) {
      try {
        generations.put(new Failure(e instanceof ExecutionException ee ? ee.getCause() : e));
      } catch (InterruptedException ignored) {
        // closed
      }
    } finally {
      if (docs != null) docs.close();
    }
  }

  /** The order files are read in during {@code epoch}: a permutation from (seed, epoch). */
  int[] fileOrder(long epoch) {
    int[] order = new int[files.size()];
    Arrays.setAll(order, i -> i);
    if (!o.shuffleFiles()) return order;
    long state = Prepare.mix(o.seed() * 0xD1B54A32D192ED03L + Prepare.mix(epoch * 131 + 3));
    for (int i = order.length - 1; i > 0; i--) {
      state = Prepare.mix(state + 0x9E3779B97F4A7C15L);
      int j = (int) Long.remainderUnsigned(state, i + 1);
      int x = order[i];
      order[i] = order[j];
      order[j] = x;
    }
    return order;
  }

  private int[] shuffled(int windows, StreamCursor s) {
    int[] order = new int[windows];
    Arrays.setAll(order, i -> i);
    long state = Prepare.mix(o.seed() * 0x9E3779B97F4A7C15L + Prepare.mix(s.epoch() * 31 + 7));
    state = Prepare.mix(state ^ s.generation());
    for (int i = windows - 1; i > 0; i--) {
      state = Prepare.mix(state + 0x9E3779B97F4A7C15L);
      int j = (int) Long.remainderUnsigned(state, i + 1);
      int x = order[i];
      order[i] = order[j];
      order[j] = x;
    }
    return order;
  }

  @Override
  public void close() {
    closed = true;
    builder.interrupt();
    pool.shutdownNow();
    try {
      builder.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
