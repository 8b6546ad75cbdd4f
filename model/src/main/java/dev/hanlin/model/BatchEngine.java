package dev.hanlin.model;

import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Continuous batching: many generation requests share one model, each in its own {@link
 * SlotKvCache} slot. One engine thread owns the model and the cache (libtorch scopes and guards are
 * thread-local); between decode steps it drops finished and cancelled sequences and lets waiting
 * ones join (each joiner's prompt is one forward of its own), then runs one decode step over every
 * active sequence at once. Token choice is {@link TextGeneration#pick} with each request's own
 * seeded generator, so a request's tokens do not depend on which others share its steps (up to
 * floating-point differences between batch shapes; at temperature 0 the tests check equal text).
 *
 * <p>The queue is bounded: {@link #submit} throws {@link QueueFullException} when it is full.
 */
public final class BatchEngine implements AutoCloseable {
  /** Receives a request's tokens on the engine thread; must not block. */
  public interface Listener {
    /** A generated token (never an end-of-sequence id); false stops the request ({@code STOP}). */
    boolean onToken(int id);

    /** Called once, last. {@code error} is set only for {@link Finish#ERROR}. */
    void onDone(Finish reason, String error);
  }

  /** Why a request ended. */
  public enum Finish {
    /** An end-of-sequence token, or the listener asked to stop (a stop string). */
    STOP,
    /** {@code maxNewTokens} reached. */
    LENGTH,
    /** Cancelled by its client (for instance a closed connection). */
    CANCELLED,
    /** The engine shut down before the request finished. */
    ABORTED,
    /** The step failed (the message says why). */
    ERROR
  }

  /** Thrown by {@link #submit} when {@code maxQueue} requests already wait. */
  public static final class QueueFullException extends RuntimeException {
    QueueFullException(int n) {
      super("the queue is full (" + n + " requests waiting)");
    }
  }

  /** A submitted request; {@link #cancel} frees its slot before the next step. */
  public static final class Handle {
    private final int[] prompt;
    private final GenerationOptions options;
    private final Listener listener;
    private volatile boolean cancelled;
    private boolean done;
    private int slot = -1;
    private int[] ids; // prompt then generated ids
    private int length;
    private SplittableRandom rng;

    private Handle(int[] prompt, GenerationOptions options, Listener listener) {
      this.prompt = prompt;
      this.options = options;
      this.listener = listener;
    }

    public void cancel() {
      cancelled = true;
    }
  }

  private final LlamaModel model;
  private final SlotKvCache cache;
  private final int maxQueue;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition wake = lock.newCondition();
  private final ArrayDeque<Handle> queue = new ArrayDeque<>();
  private final List<Handle> active = new ArrayList<>();
  private final boolean[] slotUsed;
  private final Thread thread;
  private volatile boolean accepting = true;
  private volatile boolean stopping;
  private long steps;
  private long tokens;

  /**
   * An engine with {@code maxBatch} slots of {@code capacity} positions each (prompt plus generated
   * tokens) and room for {@code maxQueue} waiting requests; its thread starts at once.
   */
  public BatchEngine(LlamaModel model, int maxBatch, int capacity, int maxQueue) {
    if (maxQueue < 0) throw new IllegalArgumentException("max-queue must be >= 0");
    if (model.config().ropeScaling() instanceof RopeScaling.Dynamic)
      throw new IllegalArgumentException(
          "dynamic RoPE scaling is not supported by the batch engine: its angles change with each"
              + " sequence's length, which differs between the rows of a step");
    this.model = model;
    this.cache = new SlotKvCache(model.config(), maxBatch, capacity, model.dtype(), model.device());
    this.maxQueue = maxQueue;
    this.slotUsed = new boolean[maxBatch];
    this.thread = Thread.ofPlatform().name("batch-engine").daemon(true).start(this::loop);
  }

  public LlamaModel model() {
    return model;
  }

  /** Positions per sequence: prompt plus new tokens must fit. */
  public int capacity() {
    return cache.capacity();
  }

  public int maxBatch() {
    return cache.slots();
  }

  /**
   * Queues a request. Throws {@link IllegalArgumentException} when it cannot fit a slot, {@link
   * QueueFullException} when the queue is full, {@link IllegalStateException} after shutdown.
   */
  public Handle submit(int[] prompt, GenerationOptions options, Listener listener) {
    if (prompt.length == 0) throw new IllegalArgumentException("the prompt has no tokens");
    if ((long) prompt.length + options.maxNewTokens() > cache.capacity())
      throw new IllegalArgumentException(
          "the prompt's "
              + prompt.length
              + " tokens plus max_tokens "
              + options.maxNewTokens()
              + " exceed the context length "
              + cache.capacity());
    int vocab = model.config().vocabSize();
    for (int id : prompt)
      if (id < 0 || id >= vocab)
        throw new IllegalArgumentException("token id " + id + " is outside the vocabulary");
    Handle h = new Handle(prompt.clone(), options, listener);
    lock.lock();
    try {
      if (!accepting) throw new IllegalStateException("the engine is shutting down");
      // a free slot takes a waiting request at the next step, so it counts as room too
      if (queue.size() >= maxQueue + freeSlots()) throw new QueueFullException(queue.size());
      queue.add(h);
      wake.signalAll();
    } finally {
      lock.unlock();
    }
    return h;
  }

  /** Requests generating now and waiting, for health reports. */
  public int[] load() {
    lock.lock();
    try {
      return new int[] {active.size(), queue.size()};
    } finally {
      lock.unlock();
    }
  }

  /** Decode steps run and tokens generated so far. */
  public long[] counters() {
    lock.lock();
    try {
      return new long[] {steps, tokens};
    } finally {
      lock.unlock();
    }
  }

  private int freeSlots() {
    int n = 0;
    for (boolean u : slotUsed) if (!u) n++;
    return n;
  }

  /**
   * Stops taking requests, aborts the waiting ones, lets the active ones run for up to {@code
   * graceMillis}, then aborts them and frees the cache.
   */
  public void shutdown(long graceMillis) {
    List<Handle> waiting;
    lock.lock();
    try {
      accepting = false;
      waiting = new ArrayList<>(queue);
      queue.clear();
      wake.signalAll();
    } finally {
      lock.unlock();
    }
    for (Handle h : waiting) h.listener.onDone(Finish.ABORTED, null);
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(graceMillis);
    lock.lock();
    try {
      while (!active.isEmpty() && System.nanoTime() < deadline)
        wake.await(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      stopping = true;
      wake.signalAll();
      lock.unlock();
    }
    try {
      thread.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    shutdown(0);
  }

  private void loop() {
    try (Grad.Guard g = Grad.inference()) {
      while (true) {
        List<Handle> joining = new ArrayList<>();
        lock.lock();
        try {
          while (!stopping && active.isEmpty() && queue.isEmpty()) wake.await();
          if (stopping) break;
          for (int s = 0; s < slotUsed.length && !queue.isEmpty(); s++) {
            if (slotUsed[s]) continue;
            Handle h = queue.poll();
            h.slot = s;
            slotUsed[s] = true;
            joining.add(h);
          }
        } catch (InterruptedException e) {
          break;
        } finally {
          lock.unlock();
        }
        for (Handle h : joining) {
          if (h.cancelled) finish(h, Finish.CANCELLED, null);
          else run(List.of(h), () -> prefill(h));
        }
        List<Handle> batch = snapshotActive();
        if (!batch.isEmpty()) run(batch, () -> decode(batch));
      }
    } finally {
      List<Handle> rest = snapshotActive();
      for (Handle h : rest) finish(h, Finish.ABORTED, null);
      cache.free();
    }
  }

  /** The active sequences, after dropping the cancelled ones. */
  private List<Handle> snapshotActive() {
    List<Handle> batch = new ArrayList<>();
    List<Handle> cancelled = new ArrayList<>();
    lock.lock();
    try {
      for (Handle h : active) (h.cancelled ? cancelled : batch).add(h);
    } finally {
      lock.unlock();
    }
    for (Handle h : cancelled) finish(h, Finish.CANCELLED, null);
    return batch;
  }

  private void run(List<Handle> hs, Runnable step) {
    try {
      step.run();
    } catch (RuntimeException e) {
      String msg = e.getClass().getSimpleName() + ": " + e.getMessage();
      for (Handle h : hs) if (!h.done) finish(h, Finish.ERROR, msg);
    }
  }

  /** One forward over the prompt of {@code h}; its first token. */
  private void prefill(Handle h) {
    h.ids = Arrays.copyOf(h.prompt, h.prompt.length + h.options.maxNewTokens());
    h.length = h.prompt.length;
    h.rng = new SplittableRandom(h.options.seed());
    lock.lock();
    try {
      active.add(h);
    } finally {
      lock.unlock();
    }
    if (h.options.maxNewTokens() == 0) {
      finish(h, Finish.LENGTH, null);
      return;
    }
    int n = h.prompt.length;
    long[] ids = new long[n], pos = new long[n];
    for (int i = 0; i < n; i++) {
      ids[i] = h.prompt[i];
      pos[i] = i;
    }
    float[] logits;
    try (Scope s = Scope.open()) {
      Tensor x = Torch.fromLongs(ids, 1, n).to(model.device());
      logits = model.forwardSlots(x, pos, new long[] {h.slot}, cache).toFloatArray(); // (1, 1, V)
    }
    accept(h, logits);
  }

  /** One token for every sequence in {@code batch}. */
  private void decode(List<Handle> batch) {
    int b = batch.size();
    long[] ids = new long[b], pos = new long[b], slots = new long[b];
    for (int i = 0; i < b; i++) {
      Handle h = batch.get(i);
      ids[i] = h.ids[h.length - 1];
      pos[i] = h.length - 1;
      slots[i] = h.slot;
    }
    float[] all;
    try (Scope s = Scope.open()) {
      Tensor x = Torch.fromLongs(ids, b, 1).to(model.device());
      Tensor out = model.forwardSlots(x, pos, slots, cache); // (B, 1, V)
      all = out.toFloatArray(); // one read back for the whole batch, as float32
    }
    int v = all.length / b;
    lock.lock();
    try {
      steps++;
    } finally {
      lock.unlock();
    }
    // Sampling sorts the vocabulary per row (milliseconds each), so rows pick in parallel when some
    // sample; each row has its own generator, so the order of picking does not matter.
    int[] next = new int[b];
    java.util.stream.IntStream rows = java.util.stream.IntStream.range(0, b);
    if (batch.stream().anyMatch(h -> !h.options.greedy())) rows = rows.parallel();
    rows.forEach(
        i -> {
          Handle h = batch.get(i);
          float[] z = Arrays.copyOfRange(all, i * v, (i + 1) * v);
          next[i] = TextGeneration.pick(z, h.ids, h.length, h.options, h.rng);
        });
    for (int i = 0; i < b; i++) accept(batch.get(i), next[i]);
  }

  /** Picks the next token of {@code h} from {@code logits}; see {@link #accept(Handle, int)}. */
  private void accept(Handle h, float[] logits) {
    accept(h, TextGeneration.pick(logits, h.ids, h.length, h.options, h.rng));
  }

  /** Appends {@code next} to {@code h} and tells its listener, finishing it when due. */
  private void accept(Handle h, int next) {
    h.ids[h.length++] = next;
    lock.lock();
    try {
      tokens++;
    } finally {
      lock.unlock();
    }
    if (h.options.eosTokenIds().contains(next)) {
      finish(h, Finish.STOP, null);
      return;
    }
    boolean more;
    try {
      more = h.listener.onToken(next);
    } catch (RuntimeException e) {
      finish(h, Finish.ERROR, "listener failed: " + e.getMessage());
      return;
    }
    if (!more) finish(h, Finish.STOP, null);
    else if (h.length - h.prompt.length >= h.options.maxNewTokens()) finish(h, Finish.LENGTH, null);
  }

  private void finish(Handle h, Finish reason, String error) {
    if (h.done) return;
    h.done = true;
    lock.lock();
    try {
      active.remove(h);
      if (h.slot >= 0) slotUsed[h.slot] = false;
      wake.signalAll();
    } finally {
      lock.unlock();
    }
    h.listener.onDone(reason, error);
  }
}
