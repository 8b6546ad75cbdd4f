package dev.hanlin.torch.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** The reusable argument block that cuLaunchKernel reads (the launch itself needs a GPU). */
class LaunchArgsTest {
  private static MemorySegment slot(LaunchArgs a, int i) {
    return a.params().getAtIndex(ADDRESS, i).reinterpret(8);
  }

  @Test
  void eachArgumentIsReachableThroughItsPointerAndARefillOverwritesIt() {
    LaunchArgs a = new LaunchArgs();
    long ptr = 0x7f00_1234_5678L;
    a.i64(ptr).i32(2048).f32(1e-5f).i64(-1L);
    assertEquals(4, a.count());
    assertEquals(ptr, slot(a, 0).get(JAVA_LONG, 0));
    assertEquals(2048, slot(a, 1).get(JAVA_INT, 0));
    assertEquals(1e-5f, slot(a, 2).get(JAVA_FLOAT, 0));
    assertEquals(-1L, slot(a, 3).get(JAVA_LONG, 0));
    a.clear().i32(7).i64(ptr + 8);
    assertEquals(2, a.count());
    assertEquals(7, slot(a, 0).get(JAVA_INT, 0));
    assertEquals(ptr + 8, slot(a, 1).get(JAVA_LONG, 0));
    for (int i = 0; i < LaunchArgs.MAX; i++) assertEquals(0, slot(a, i).address() % 8);
  }

  @Test
  void moreThanMaxArgumentsAreRefusedAndEachThreadHasItsOwnBlock() throws Exception {
    LaunchArgs a = new LaunchArgs();
    for (int i = 0; i < LaunchArgs.MAX; i++) a.i32(i);
    assertThrows(IllegalStateException.class, () -> a.i32(0));
    LaunchArgs mine = LaunchArgs.ofThisThread().i32(1);
    assertSame(mine, LaunchArgs.ofThisThread());
    assertEquals(0, LaunchArgs.ofThisThread().count(), "ofThisThread clears");
    LaunchArgs[] other = new LaunchArgs[1];
    Thread t = Thread.ofPlatform().start(() -> other[0] = LaunchArgs.ofThisThread());
    t.join();
    assertEquals(false, other[0] == mine);
  }
}
