package dev.hanlin.torch.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.lang.ref.WeakReference;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.bytedeco.pytorch.ProcessGroup;
import org.junit.jupiter.api.Test;

/**
 * Groups are made, used and then collected by the GC many times in one process, as a test JVM does
 * with its in-process ranks, and the native heap stays whole. A store was owned twice (by JavaCPP
 * and by the backend's reference count, see Group#handOver), so collecting a group deleted it twice
 * and wrote into the freed chunk: the test JVMs of the train module aborted with {@code malloc():
 * unsorted double linked list corrupted} now and then. Here the churn runs in a fresh JVM with
 * glibc's per-thread cache off ({@code GLIBC_TUNABLES=glibc.malloc.tcache_count=0}), so that a
 * freed chunk goes straight to the unsorted list whose links lie where the store's reference count
 * was: a write after free aborts at a later allocation instead of passing unseen. Before the fix
 * the churn aborted 3 runs of 3 within 30 rounds; the abort is the failure this test reports.
 */
class GroupLifetimeTest {
  private static final int ROUNDS = 20;

  @Test
  void groupsCollectedByTheGcLeaveTheNativeHeapWhole() throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElseThrow());
    cmd.add("--enable-native-access=ALL-UNNAMED");
    cmd.add("-Xmx512m");
    cmd.addAll(
        List.of(
            "-cp",
            System.getProperty("java.class.path"),
            Churn.class.getName(),
            String.valueOf(ROUNDS)));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().put("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0");
    Process p = pb.start();
    String out = readAll(p);
    assertTrue(p.waitFor(5, TimeUnit.MINUTES), "the churn did not finish in 5 minutes");
    String tail = out.length() > 3000 ? out.substring(out.length() - 3000) : out;
    assertEquals(
        0,
        p.exitValue(),
        "the churn JVM died (134: aborted by glibc's heap checks, a c10 assert or a JVM crash):\n"
            + tail);
    assertTrue(out.contains("churned " + ROUNDS + " rounds"), tail);
  }

  private static String readAll(Process p) throws IOException {
    return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
  }

  /**
   * Run in a fresh JVM by the test above: per round, two ranks (threads) join a group over
   * loopback, all-reduce, start and await an asynchronous reduce, and close it. Each rank keeps its
   * c10d process group a little longer than the group, as the data-parallel Reducer does: first the
   * groups are collected by the GC (a side thread keeps it running), then the process groups, whose
   * backends then drop their stores.
   */
  static final class Churn {
    /** What a rank leaves behind: its group, to see it collected, and its process group. */
    private record Left(WeakReference<Group> group, ProcessGroup pg, double sum) {}

    public static void main(String[] args) throws Exception {
      int rounds = Integer.parseInt(args[0]);
      AtomicBoolean done = new AtomicBoolean();
      Thread gc =
          Thread.ofPlatform()
              .daemon()
              .start(
                  () -> {
                    while (!done.get()) {
                      System.gc();
                      try {
                        Thread.sleep(5);
                      } catch (InterruptedException e) {
                        return;
                      }
                    }
                  });
      ExecutorService ranks = Executors.newFixedThreadPool(2);
      try {
        for (int round = 0; round < rounds; round++) {
          int port;
          try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
          }
          List<Future<Left>> started = new ArrayList<>();
          for (int r = 0; r < 2; r++) {
            Dist d = new Dist(r, r, 2, 2, "127.0.0.1", port);
            started.add(ranks.submit(() -> useOnce(d)));
          }
          List<Left> left = new ArrayList<>();
          for (Future<Left> f : started) left.add(f.get(60, TimeUnit.SECONDS));
          for (Left l : left)
            if (l.sum() != 3.0) throw new AssertionError("round " + round + ": sum " + l.sum());
          long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
          while (left.stream().anyMatch(l -> l.group().get() != null)) {
            if (System.nanoTime() > until)
              throw new AssertionError("round " + round + ": a group was not collected in 30 s");
            Thread.sleep(5);
          }
          Thread.sleep(50); // JavaCPP's deallocator frees what the collected groups held
          left.clear(); // now the process groups go, and with them the backends
          System.out.println("round " + round + " done");
        }
        Thread.sleep(200);
      } finally {
        done.set(true);
        gc.join();
        ranks.shutdownNow();
      }
      System.out.println("churned " + rounds + " rounds");
    }

    /** Rank {@code d}: 1 + 2 summed two ways. */
    private static Left useOnce(Dist d) {
      try (Group g = Group.join(d, Device.CPU, Duration.ofSeconds(30));
          Scope s = Scope.open()) {
        double sum = g.sum(d.rank() + 1.0)[0];
        Tensor t = Torch.full(d.rank() + 1.0, DType.F32, Device.CPU, 4);
        g.reduceSumAsync(t, 0).await();
        if (d.rank() == 0 && t.toFloatArray()[0] != 3f)
          throw new AssertionError("reduce gave " + t.toFloatArray()[0]);
        return new Left(new WeakReference<>(g), g.nativeGroup(), sum);
      }
    }
  }
}
