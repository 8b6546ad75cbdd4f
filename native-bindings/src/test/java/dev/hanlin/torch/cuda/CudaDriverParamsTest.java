package dev.hanlin.torch.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** The kernel-argument block that cuLaunchKernel reads (the launch itself needs a GPU). */
class CudaDriverParamsTest {
  @Test
  void eachArgumentIsReachableThroughItsPointerWithItsOwnWidth() {
    try (Arena a = Arena.ofConfined()) {
      long ptr = 0x7f00_1234_5678L;
      MemorySegment p = CudaDriver.params(a, "k", ptr, 2048, 1e-5f, -1L);
      MemorySegment[] slot = new MemorySegment[4];
      for (int i = 0; i < 4; i++) slot[i] = p.getAtIndex(ADDRESS, i).reinterpret(8);
      assertEquals(ptr, slot[0].get(JAVA_LONG, 0));
      assertEquals(2048, slot[1].get(JAVA_INT, 0));
      assertEquals(1e-5f, slot[2].get(JAVA_FLOAT, 0));
      assertEquals(-1L, slot[3].get(JAVA_LONG, 0));
      for (int i = 0; i < 4; i++) {
        assertEquals(0, slot[i].address() % 8, "slot " + i + " is 8-byte aligned");
        for (int j = 0; j < i; j++) assertTrue(slot[i].address() != slot[j].address());
      }
    }
  }

  @Test
  void anArgumentOfAnotherTypeIsRefusedWithItsPosition() {
    try (Arena a = Arena.ofConfined()) {
      var e =
          assertThrows(
              IllegalArgumentException.class, () -> CudaDriver.params(a, "rope", 1L, 2.0, 3));
      assertTrue(e.getMessage().contains("rope: argument 1"), e.getMessage());
      assertThrows(IllegalArgumentException.class, () -> CudaDriver.params(a, "k", (Object) null));
    }
  }
}
