package dev.hanlin.train.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.model.LlamaConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class MfuAndListenersTest {

  @Test
  void flopsPerTokenIsSixNPlusCausalAttention() {
    assertEquals(6.0 * 1000 + 6.0 * 2 * 16 * 8, Mfu.flopsPerToken(1000, 2, 16, 8));
    LlamaConfig c = LlamaConfig.tinyLlama1b();
    long untiedEmbedding = (long) c.vocabSize() * c.hiddenSize();
    double expected =
        6.0 * (c.parameterCount() - untiedEmbedding)
            + 6.0 * c.numHiddenLayers() * 2048 * c.numAttentionHeads() * c.headDim();
    assertEquals(expected, Mfu.flopsPerToken(c, 2048));
    // TinyLlama-1.1B at T=2048: N = 1.100e9 - 65.5e6 (input embedding) = 1.035e9, so
    // 6N = 6.21e9, plus attention 6·22·2048·2048 = 0.55e9
    assertEquals(6.76e9, Mfu.flopsPerToken(c, 2048), 0.01e9);
  }

  @Test
  void peaksByDeviceName() {
    assertEquals(989e12, Mfu.peakFlopsPerSecond("NVIDIA H100 80GB HBM3"));
    assertEquals(989e12, Mfu.peakFlopsPerSecond("NVIDIA H200"));
    assertEquals(756e12, Mfu.peakFlopsPerSecond("NVIDIA H100 PCIe"));
    assertTrue(Double.isNaN(Mfu.peakFlopsPerSecond("cpu")));
    assertTrue(Double.isNaN(Mfu.mfu(1000, 1e9, Double.NaN)));
    assertEquals(0.5, Mfu.mfu(494.5e3, 1e9, 989e12), 1e-12);
  }

  @Test
  void listenersFanOutInOrderAndRethrowTheFirstFailure() {
    List<String> calls = new ArrayList<>();
    RuntimeException boom = new IllegalStateException("boom");
    TrainingListener a =
        new TrainingListener() {
          @Override
          public void onStep(StepMetrics m) {
            calls.add("a" + m.step());
            throw boom;
          }
        };
    TrainingListener b =
        new TrainingListener() {
          @Override
          public void onStep(StepMetrics m) {
            calls.add("b" + m.step());
          }

          @Override
          public void onCheckpoint(long step, Path dir) {
            calls.add("b ckpt " + step + " " + dir);
          }
        };
    Listeners all = Listeners.of(a, b);
    var thrown =
        assertThrows(
            IllegalStateException.class,
            () -> all.onStep(new StepMetrics(3, 9, 1, 1, 1, 1, 1, 1, 0, false)));
    assertSame(boom, thrown);
    all.onCheckpoint(3, Path.of("c"));
    all.onEnd();
    assertEquals(List.of("a3", "b3", "b ckpt 3 c"), calls);
  }
}
