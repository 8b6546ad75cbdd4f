package dev.hanlin.train.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The ordering of offload's pipelined update, with a lane that records instead of copying: the
 * forward of unit {@code i} waits (host and stream) for unit {@code i}'s mark alone, while later
 * units are still being updated; zeroing the gradients waits for their copies; a failed update ends
 * the waiting forward with its error.
 */
class OffloadPipelineTest {
  /** Marks are strings; every wait is written down, in the order it happened. */
  static final class RecordingLane implements OffloadPipeline.Lane {
    final List<String> log = Collections.synchronizedList(new ArrayList<>());
    int marks;

    @Override
    public void followCompute() {
      log.add("follow");
    }

    @Override
    public void useSide() {}

    @Override
    public void onSide(Runnable r) {
      r.run();
    }

    @Override
    public synchronized Object mark() {
      return "m" + marks++;
    }

    @Override
    public void hostWait(Object mark) {
      log.add("hostWait " + mark);
    }

    @Override
    public void streamWait(Object mark) {
      log.add("streamWait " + mark);
    }

    @Override
    public void release(Object mark) {}
  }

  @Test
  void theForwardOfAUnitWaitsForThatUnitAloneWhileLaterUnitsAreStillUpdated() throws Exception {
    var lane = new RecordingLane();
    var pipeline = new OffloadPipeline(lane, 3);
    CountDownLatch[] allow = {new CountDownLatch(1), new CountDownLatch(1), new CountDownLatch(1)};
    CountDownLatch unit2Started = new CountDownLatch(1);
    pipeline.launch(
        () -> lane.mark(), // "m0": after the gradients' copies
        () -> {
          for (int u = 0; u < 3; u++) {
            if (u == 2) unit2Started.countDown();
            await(allow[u]);
            pipeline.unitQueued(u); // unit u's mark: "m<u+1>"
          }
        });
    assertEquals(List.of("follow"), lane.log);

    allow[0].countDown();
    pipeline.awaitUnit(0); // returns although units 1 and 2 are not done
    assertEquals("streamWait m1", lane.log.getLast());
    pipeline.awaitUnit(0); // once only
    assertEquals(2, lane.log.size());

    allow[1].countDown();
    pipeline.awaitUnit(1);
    assertEquals("streamWait m2", lane.log.getLast());
    assertTrue(unit2Started.await(10, TimeUnit.SECONDS));

    // unit 2 is still being updated: its forward blocks until it is queued
    var waiter = new Thread(() -> pipeline.awaitUnit(2));
    waiter.start();
    waiter.join(200);
    assertTrue(waiter.isAlive(), "the forward of unit 2 waited for unit 2");
    assertEquals(3, lane.log.size());
    allow[2].countDown();
    waiter.join(10_000);
    assertFalse(waiter.isAlive());
    assertEquals("streamWait m3", lane.log.getLast());

    pipeline.awaitGradsCopied();
    assertEquals("streamWait m0", lane.log.getLast());
    pipeline.awaitAll();
    assertFalse(pipeline.pendingUpdate());
    assertEquals(
        List.of("follow", "streamWait m1", "streamWait m2", "streamWait m3", "streamWait m0"),
        lane.log);
  }

  @Test
  void withNoUpdateUnderWayNothingWaits() {
    var lane = new RecordingLane();
    var pipeline = new OffloadPipeline(lane, 2);
    pipeline.awaitUnit(0);
    pipeline.awaitGradsCopied();
    pipeline.awaitAll();
    assertEquals(List.of(), lane.log);
  }

  @Test
  void aFailedUpdateEndsTheWaitingForwardWithItsError() {
    var pipeline = new OffloadPipeline(new RecordingLane(), 2);
    var boom = new IllegalStateException("a parameter of group 'x' has no gradient");
    pipeline.launch(
        () -> null,
        () -> {
          throw boom;
        });
    assertSame(boom, assertThrows(IllegalStateException.class, () -> pipeline.awaitUnit(1)));
    assertSame(boom, assertThrows(IllegalStateException.class, pipeline::awaitAll));
  }

  @Test
  void aNewStepWaitsForTheLastUpdateBeforeItsGradientCopies() {
    var lane = new RecordingLane();
    var pipeline = new OffloadPipeline(lane, 1);
    List<String> order = Collections.synchronizedList(new ArrayList<>());
    pipeline.launch(
        () -> null,
        () -> {
          order.add("update 1");
          pipeline.unitQueued(0);
        });
    pipeline.launch(
        () -> {
          order.add("copies 2");
          return null;
        },
        () -> pipeline.unitQueued(0));
    pipeline.awaitAll();
    assertEquals(List.of("update 1", "copies 2"), order);
  }

  private static void await(CountDownLatch l) {
    try {
      assertTrue(l.await(10, TimeUnit.SECONDS));
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }
}
