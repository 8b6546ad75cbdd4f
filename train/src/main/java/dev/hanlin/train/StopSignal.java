package dev.hanlin.train;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * SIGTERM and SIGINT (Ctrl-C) ask the run to stop: the JVM's shutdown hook raises a flag, the loop
 * sees it after the current step, writes a checkpoint and returns, and only then does the hook let
 * the JVM exit. No signal-handler internals are needed.
 */
final class StopSignal implements AutoCloseable {
  private volatile boolean requested;
  private final CountDownLatch finished = new CountDownLatch(1);
  private final Thread hook;

  StopSignal(long graceSeconds) {
    hook =
        new Thread(
            () -> {
              requested = true;
              System.err.println(
                  "\nstop requested: finishing the step and writing a checkpoint...");
              try {
                if (!finished.await(graceSeconds, TimeUnit.SECONDS))
                  System.err.println(
                      "gave up waiting for the checkpoint after " + graceSeconds + " s");
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            },
            "hanlin-stop");
    Runtime.getRuntime().addShutdownHook(hook);
  }

  boolean requested() {
    return requested;
  }

  @Override
  public void close() {
    finished.countDown();
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException e) {
      // already shutting down: the hook is running and now proceeds
    }
  }
}
