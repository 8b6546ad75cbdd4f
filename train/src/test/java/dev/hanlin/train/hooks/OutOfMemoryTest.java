package dev.hanlin.train.hooks;

import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.Device;
import org.junit.jupiter.api.Test;

/** The explanation of an out-of-memory error reports the peak of the rank's own GPU. */
class OutOfMemoryTest {
  @Test
  void reportsThePeakOfTheRanksDevice() {
    // device 0 peaked at 1 GiB, device 3 (this rank's) at 70 GiB
    var oom =
        new OutOfMemory(1_000_000, 4, 512, Device.cuda(3), d -> d == 3 ? 70L << 30 : 1L << 30);
    RuntimeException e = oom.explain(new RuntimeException("CUDA out of memory. Tried to ..."));
    assertTrue(e.getMessage().contains("CUDA peak 70.0 GiB"), e.getMessage());
    assertTrue(e.getMessage().contains("micro-batch 4 x 512 tokens"), e.getMessage());
  }

  @Test
  void otherErrorsPassUnchanged() {
    var other = new RuntimeException("shape mismatch");
    assertSame(other, new OutOfMemory(1, 1, 1, Device.CPU, d -> 0).explain(other));
  }
}
