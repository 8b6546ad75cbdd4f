package dev.hanlin.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Continuous batching: sequences of different lengths decoded together, joining and leaving between
 * steps, give the tokens that {@link TextGeneration#generate} gives each one alone (greedy and
 * seeded sampling); a cancelled request frees its slot; a full queue refuses.
 */
class BatchEngineTest {
  static LlamaModel m;

  @BeforeAll
  static void load() throws Exception {
    m = HfCheckpoint.load(TestData.dir("parity").resolve("gqa"), DType.F32, Device.CPU);
  }

  /** Collects a request's tokens and how it ended. */
  static final class Collect implements BatchEngine.Listener {
    final List<Integer> ids = new ArrayList<>();
    final CompletableFuture<BatchEngine.Finish> done = new CompletableFuture<>();
    final int stopAfter;
    final CountDownLatch first = new CountDownLatch(1);
    final CountDownLatch gate = new CountDownLatch(1);
    boolean holdAtFirst;

    Collect(int stopAfter) {
      this.stopAfter = stopAfter;
    }

    @Override
    public boolean onToken(int id) {
      synchronized (this) {
        ids.add(id);
      }
      first.countDown();
      // a test freezes the engine here (on its thread) to act while this request holds its slot
      if (holdAtFirst) {
        try {
          gate.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      return tokens().length < stopAfter;
    }

    @Override
    public void onDone(BatchEngine.Finish reason, String error) {
      if (error != null) done.completeExceptionally(new AssertionError(error));
      else done.complete(reason);
    }

    synchronized int[] tokens() {
      return ids.stream().mapToInt(Integer::intValue).toArray();
    }
  }

  static int[] solo(int[] prompt, GenerationOptions o) {
    int[] all = TextGeneration.generate(m, prompt, o);
    int[] out = Arrays.copyOfRange(all, prompt.length, all.length);
    // the engine does not pass end-of-sequence ids to the listener
    if (out.length > 0 && o.eosTokenIds().contains(out[out.length - 1]))
      out = Arrays.copyOf(out, out.length - 1);
    return out;
  }

  @Test
  void dynamicRopeIsRefusedAtTheStart() throws Exception {
    LlamaModel dyn =
        HfCheckpoint.load(TestData.dir("parity").resolve("dynamic"), DType.F32, Device.CPU);
    assertThrows(IllegalArgumentException.class, () -> new BatchEngine(dyn, 2, 32, 2));
  }

  @Test
  void slotPrefillEqualsThePlainForward() {
    long[] a = {1, 17, 99, 250, 3, 8, 9};
    SlotKvCache cache = new SlotKvCache(m.config(), 3, 32, DType.F32, Device.CPU);
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.inference()) {
      long[] pos = {0, 1, 2, 3, 4, 5, 6};
      Tensor slot = m.forwardSlots(Torch.fromLongs(a, 1, a.length), pos, new long[] {2}, cache);
      Tensor plain = m.forward(Torch.fromLongs(a, 1, a.length), null).narrow(1, a.length - 1, 1);
      double d = slot.sub(plain).abs().max().item();
      assertTrue(d < 1e-5, "slot forward differs from the plain one by " + d);
    } finally {
      cache.free();
    }
  }

  @Test
  void batchedRequestsMatchSoloGeneration() throws Exception {
    List<Integer> noEos = List.of(); // run every request to its length
    int[][] prompts = {
      {1, 5, 6, 7},
      {1, 300, 301, 302, 303, 304, 305, 306, 307},
      {1, 42},
      {1, 9, 9, 9, 9, 9},
      {1, 100, 200},
      {1, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}
    };
    GenerationOptions[] opts = new GenerationOptions[prompts.length];
    for (int i = 0; i < prompts.length; i++)
      opts[i] =
          i % 2 == 0
              ? GenerationOptions.greedy(6 + 3 * i, noEos)
              : new GenerationOptions(6 + 3 * i, 0.9, 20, 0.9, 1.1, 1000 + i, noEos);
    // 3 slots for 6 requests of different lengths: later ones join as earlier ones finish
    List<Collect> got = new ArrayList<>();
    try (BatchEngine e = new BatchEngine(m, 3, 64, 8)) {
      for (int i = 0; i < prompts.length; i++) {
        Collect c = new Collect(Integer.MAX_VALUE);
        e.submit(prompts[i], opts[i], c);
        got.add(c);
      }
      for (Collect c : got)
        assertEquals(BatchEngine.Finish.LENGTH, c.done.get(60, TimeUnit.SECONDS));
      assertTrue(e.counters()[0] > 0);
    }
    for (int i = 0; i < prompts.length; i++)
      assertArrayEquals(solo(prompts[i], opts[i]), got.get(i).tokens(), "request " + i);
  }

  @Test
  void endOfSequenceAndListenerStopEndARequest() throws Exception {
    int[] prompt = {1, 5, 6, 7};
    int[] free = solo(prompt, GenerationOptions.greedy(8, List.of()));
    // make the 3rd generated token the end-of-sequence id
    GenerationOptions eos = GenerationOptions.greedy(8, List.of(free[2]));
    try (BatchEngine e = new BatchEngine(m, 2, 32, 4)) {
      Collect a = new Collect(Integer.MAX_VALUE), b = new Collect(2);
      e.submit(prompt, eos, a);
      e.submit(prompt, GenerationOptions.greedy(8, List.of()), b);
      assertEquals(BatchEngine.Finish.STOP, a.done.get(30, TimeUnit.SECONDS));
      assertEquals(BatchEngine.Finish.STOP, b.done.get(30, TimeUnit.SECONDS));
      assertArrayEquals(Arrays.copyOf(free, 2), a.tokens());
      assertArrayEquals(Arrays.copyOf(free, 2), b.tokens());
    }
  }

  @Test
  void cancelFreesTheSlotAndAFullQueueRefuses() throws Exception {
    try (BatchEngine e = new BatchEngine(m, 1, 4096, 1)) {
      Collect longOne = new Collect(Integer.MAX_VALUE);
      longOne.holdAtFirst = true; // the engine waits in its first token until the gate opens
      var h = e.submit(new int[] {1, 2, 3}, GenerationOptions.greedy(4000, List.of()), longOne);
      assertTrue(longOne.first.await(30, TimeUnit.SECONDS));
      Collect waiting = new Collect(Integer.MAX_VALUE);
      e.submit(new int[] {1, 4}, GenerationOptions.greedy(3, List.of()), waiting);
      // one slot busy, one request waiting: the queue (1) is full
      assertThrows(
          BatchEngine.QueueFullException.class,
          () -> e.submit(new int[] {1}, GenerationOptions.greedy(1, List.of()), new Collect(9)));
      h.cancel();
      longOne.gate.countDown();
      assertEquals(BatchEngine.Finish.CANCELLED, longOne.done.get(30, TimeUnit.SECONDS));
      assertEquals(1, longOne.tokens().length, "cancelled after its first token");
      assertEquals(BatchEngine.Finish.LENGTH, waiting.done.get(30, TimeUnit.SECONDS));
      assertArrayEquals(
          solo(new int[] {1, 4}, GenerationOptions.greedy(3, List.of())), waiting.tokens());
      assertThrows(
          IllegalArgumentException.class,
          () ->
              e.submit(
                  new int[] {1, 2}, GenerationOptions.greedy(4095, List.of()), new Collect(1)));
    }
  }
}
