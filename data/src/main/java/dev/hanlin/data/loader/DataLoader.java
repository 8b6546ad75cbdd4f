package dev.hanlin.data.loader;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.DataException;
import dev.hanlin.data.shard.TokenDataset;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * Packed, shuffled, exactly resumable batches from a {@link TokenDataset}. A background thread
 * assembles the next {@code prefetch} batches (blocks copied from zero-copy views of the mapped
 * shards into pinned host memory when CUDA is present); {@link #next()} hands one over, copying it
 * to the device without blocking. Which blocks come when is {@link BlockSampler}'s business.
 */
public final class DataLoader implements AutoCloseable {
  private final TokenDataset data;
  private final LoaderOptions options;
  private final BlockSampler sampler;
  private final BlockingQueue<Object> queue;
  private final Thread worker;
  private volatile boolean closed;
  private Cursor cursor;

  private record Ready(Tensor host, Cursor after) {}

  private record Failure(Throwable error) {}

  /** Starts loading at {@code start} ({@link Cursor#START} for a fresh run). */
  public DataLoader(TokenDataset data, LoaderOptions options, Cursor start) {
    this.data = data;
    this.options = options;
    long windows = data.windows(options.blockSize());
    if (windows == 0) {
      throw new DataException(
          "the split has "
              + data.tokenCount()
              + " tokens, fewer than one block of block_size + 1 = "
              + (options.blockSize() + 1));
    }
    this.sampler =
        new BlockSampler(
            windows,
            options.batchSize(),
            options.rank(),
            options.worldSize(),
            options.seed(),
            options.shuffle());
    this.cursor = sampler.normalize(start);
    this.queue = new ArrayBlockingQueue<>(options.prefetch());
    Cursor first = cursor;
    this.worker = Thread.ofPlatform().daemon().name("data-prefetch").start(() -> produce(first));
  }

  public BlockSampler sampler() {
    return sampler;
  }

  /** Steps in one epoch (the same on every rank). */
  public long stepsPerEpoch() {
    return sampler.stepsPerEpoch();
  }

  /** Where the loader stands: after the last batch {@link #next()} returned. */
  public Cursor cursor() {
    return cursor;
  }

  /** The next batch; blocks until the prefetch thread has it. The caller closes it. */
  public Batch next() {
    Object o;
    try {
      o = queue.take();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new DataException("interrupted while waiting for data", e);
    }
    if (o instanceof Failure f) {
      // A corrupt shard's message already says what and where; keep it as the message.
      if (f.error() instanceof DataException d) throw new DataException(d.getMessage(), d);
      throw new DataException("the data prefetch thread failed: " + f.error(), f.error());
    }
    Ready r = (Ready) o;
    cursor = r.after();
    if (!options.device().isCuda()) return new Batch(r.host(), r.after());
    Tensor onDevice = r.host().to(options.device(), DType.I64, true);
    r.host().close(); // the caching host allocator keeps the block until the copy is done
    return new Batch(onDevice, r.after());
  }

  private void produce(Cursor c) {
    int b = options.batchSize();
    int t = options.blockSize();
    try {
      while (!closed) {
        long[] windows = sampler.windows(c);
        Cursor after = sampler.advance(c);
        Tensor host;
        // Every native object of the assembly (options, views) dies with this scope; only the
        // batch survives it, owned by whoever takes it from the queue.
        try (Scope s = Scope.open()) {
          host = s.keep(Torch.emptyPinned(DType.I64, b, t + 1));
          for (int j = 0; j < b; j++) data.copyTo(windows[j] * t, host.select(0, j));
        }
        queue.put(new Ready(host, after));
        c = after;
      }
    } catch (InterruptedException e) {
      // closed
    } catch (Throwable e) {
      try {
        queue.put(new Failure(e));
      } catch (InterruptedException ignored) {
        // closed
      }
    }
  }

  /** Stops the prefetch thread and frees the batches it had ready; the dataset stays open. */
  @Override
  public void close() {
    closed = true;
    worker.interrupt();
    try {
      worker.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    for (Object o; (o = queue.poll()) != null; ) {
      if (o instanceof Ready r) r.host().close();
    }
  }
}
