package dev.hanlin.torch.fused;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class BlockKernelsTest {
  @Test
  void normThreadsCoverTheRowInWholeWarps() {
    assertEquals(256, BlockKernels.normThreads(2048)); // TinyLlama
    assertEquals(512, BlockKernels.normThreads(4096)); // Llama 2 7B
    assertEquals(640, BlockKernels.normThreads(5120)); // 13B
    assertEquals(1024, BlockKernels.normThreads(8192)); // 70B
    assertEquals(32, BlockKernels.normThreads(64)); // tiny test models
    for (long c = 1; c <= BlockKernels.MAX_NORM_COLUMNS; c += 37) {
      int t = BlockKernels.normThreads(c);
      assertEquals(0, t % 32);
      assertTrue(
          (long) t * BlockKernels.WIDTH >= c && t <= 1024, c + " columns, " + t + " threads");
    }
    assertThrows(IllegalArgumentException.class, () -> BlockKernels.normThreads(8193));
    assertThrows(IllegalArgumentException.class, () -> BlockKernels.normThreads(0));
  }

  @Test
  void normBackwardBlocksCoverEveryRowOnce() {
    for (long n : new long[] {1, 7, 511, 512, 513, 8192, 16384, 65537}) {
      var l = BlockKernels.NormBackwardLaunch.of(n);
      assertTrue(l.blocks() <= BlockKernels.NormBackwardLaunch.MAX_BLOCKS);
      assertTrue((long) l.blocks() * l.rowsPerBlock() >= n, "rows " + n + ": " + l);
      assertTrue(
          (long) (l.blocks() - 1) * l.rowsPerBlock() < n, "no empty block, rows " + n + ": " + l);
    }
    assertEquals(
        new BlockKernels.NormBackwardLaunch(512, 32), BlockKernels.NormBackwardLaunch.of(16384));
    assertEquals(0, BlockKernels.NormBackwardLaunch.of(0).blocks()); // no rows, no partials
    assertThrows(IllegalArgumentException.class, () -> BlockKernels.NormBackwardLaunch.of(-1));
  }

  @Test
  void crossEntropyThreads() {
    assertEquals(1024, BlockKernels.crossEntropyThreads(32000));
    assertEquals(1024, BlockKernels.crossEntropyThreads(65000));
    assertEquals(32, BlockKernels.crossEntropyThreads(100));
    assertEquals(64, BlockKernels.crossEntropyThreads(1500));
  }

  @Test
  void sourceNamesEveryKernelItExports() {
    String src = BlockKernels.source();
    for (String t : BlockKernels.TYPES) {
      assertTrue(src.contains("ELEMENTWISE(" + t) && src.contains("RMS(" + t), t);
    }
    assertEquals(21, BlockKernels.names().size());
  }
}
