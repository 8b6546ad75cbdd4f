package dev.hanlin.train.precision;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The timing of offload's pipelined update (DeepSpeed ZeRO-Offload's overlap of the CPU optimizer
 * with the GPU): the model's units in forward order (the embedding, each block, the final norm and
 * head; index {@code stage + 1} of {@code RecomputingBackward.stageOf}) are updated one after the
 * other on a background thread, and the next step's forward of unit {@code i} waits for unit {@code
 * i} alone: the host until the background thread has queued that unit's copy back to the device
 * (which it does while the GPU still computes earlier units), the device stream until that copy has
 * run ({@link Lane#streamWait}, no host sync). So the CPU AdamW of later units runs while the GPU
 * computes the forward of earlier ones.
 *
 * <p>What the update does and how copies run is the caller's ({@link OffloadedMasters}) and the
 * {@link Lane}'s; this class only orders them, so that its waits can be tested with a recording
 * lane.
 */
final class OffloadPipeline {
  /**
   * Where copies between the device and the host run: on CUDA a side stream with events, on the CPU
   * nowhere (copies are synchronous, every mark null, every wait a no-op).
   */
  interface Lane {
    /** Makes the side stream wait for the work queued so far on the calling thread's stream. */
    void followCompute();

    /** Makes the calling thread's copies go to the side stream (for the rest of its life). */
    void useSide();

    /** Runs {@code r} with the calling thread's copies on the side stream, then restores it. */
    void onSide(Runnable r);

    /** A mark after the work queued so far on the side stream (null on the CPU). */
    Object mark();

    /** The host waits until the side stream has passed {@code mark}. */
    void hostWait(Object mark);

    /**
     * The calling thread's stream waits (on the device) until the side stream passed {@code mark}.
     */
    void streamWait(Object mark);

    /** Frees {@code mark}. */
    void release(Object mark);
  }

  private final Lane lane;
  private final int units;
  private final ExecutorService worker;
  private Step pending; // the step whose update may still be under way; null: none

  /** One step's update: per unit, the mark after its copy back, once queued. */
  private final class Step {
    final List<CompletableFuture<Object>> ready = new ArrayList<>();
    final boolean[] waited = new boolean[units];
    final Object gradsCopied; // the mark after the gradients' copies to the host
    CompletableFuture<Void> done;

    Step(Object gradsCopied) {
      this.gradsCopied = gradsCopied;
      for (int i = 0; i < units; i++) ready.add(new CompletableFuture<>());
    }
  }

  OffloadPipeline(Lane lane, int units) {
    this.lane = lane;
    this.units = units;
    this.worker =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "offload-adamw");
              t.setDaemon(true); // an aborted run does not wait for it
              return t;
            });
  }

  Lane lane() {
    return lane;
  }

  /**
   * Starts one step's update, after the backward (whose work the side stream follows): on the
   * calling thread {@code copyGrads} queues the gradients' copies to the host and returns the mark
   * after them; then {@code update} runs on the background thread, with its copies on the side
   * stream, and must call {@link #unitQueued} for every unit once that unit's copy back is queued.
   * The previous step's update is waited for first (by then it is done: the forward waited for
   * every unit), so the side stream carries its copies back before this step's gradient copies.
   */
  void launch(java.util.function.Supplier<Object> copyGrads, Runnable update) {
    awaitAll();
    lane.followCompute();
    Object[] copied = new Object[1];
    lane.onSide(() -> copied[0] = copyGrads.get());
    Step s = new Step(copied[0]);
    pending = s;
    s.done =
        CompletableFuture.runAsync(
            () -> {
              lane.useSide();
              try {
                update.run();
              } catch (Throwable t) {
                s.ready.forEach(f -> f.completeExceptionally(t)); // a waiting forward ends too
                throw t;
              }
            },
            worker);
  }

  /**
   * From {@code update}: unit {@code unit}'s copy back is queued (all of it: this is the point the
   * next forward of the unit waits for).
   */
  void unitQueued(int unit) {
    pending().ready.get(unit).complete(lane.mark());
  }

  private Step pending() {
    Step s = pending;
    if (s == null) throw new IllegalStateException("no offload update under way");
    return s;
  }

  /** Before the gradients are zeroed: the device waits for this step's copies of them. */
  void awaitGradsCopied() {
    if (pending != null) lane.streamWait(pending.gradsCopied);
  }

  /**
   * Before the forward of unit {@code unit}: the host waits until its copy back is queued, the
   * calling thread's stream until it has run. Nothing when no update is under way or the unit was
   * waited for already.
   */
  void awaitUnit(int unit) {
    Step s = pending;
    if (s == null || s.waited[unit]) return;
    Object mark = join(s.ready.get(unit));
    lane.streamWait(mark);
    s.waited[unit] = true;
  }

  /** Every unit waited for and the update finished (before anything uses the whole model). */
  void awaitAll() {
    Step s = pending;
    if (s == null) return;
    for (int u = 0; u < units; u++) awaitUnit(u);
    join(s.done);
    pending = null;
    for (var f : s.ready) lane.release(f.join());
    lane.release(s.gradsCopied);
  }

  /** Whether an update is under way (not yet waited for as a whole). */
  boolean pendingUpdate() {
    return pending != null;
  }

  private static <T> T join(CompletableFuture<T> f) {
    try {
      return f.join();
    } catch (CompletionException e) {
      Throwable c = e.getCause();
      if (c instanceof RuntimeException r) throw r;
      if (c instanceof Error err) throw err;
      throw e;
    }
  }
}
