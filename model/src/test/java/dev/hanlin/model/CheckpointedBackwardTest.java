package dev.hanlin.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Recompute-per-block backward gives the plain backward's loss and gradients. */
class CheckpointedBackwardTest {
  @Test
  void sameGradientsAsThePlainBackward() throws Exception {
    for (String name : new String[] {"gqa", "tied"}) {
      LlamaModel m = HfCheckpoint.load(TestData.dir("parity").resolve(name), DType.F32, Device.CPU);
      for (Tensor w : m.weights().values()) w.requiresGrad(true);
      Tensor ids =
          Torch.fromLongs(new long[] {5, 9, 33, 7, 81, 12, 3, 44, 100, 2, 60, 61}, 2, 6).retain();
      Tensor targets =
          Torch.fromLongs(new long[] {9, 33, 7, 81, 12, -100, 44, 100, 2, 60, 61, 70}, 12).retain();
      double plainLoss;
      Map<String, float[]> plain = new LinkedHashMap<>();
      try (Scope s = Scope.open()) {
        Tensor logits = m.forward(ids, null);
        Tensor loss = Torch.crossEntropy(logits.reshape(-1, logits.size(-1)), targets);
        loss.backward();
        plainLoss = loss.item();
        for (var e : m.weights().entrySet()) {
          plain.put(e.getKey(), e.getValue().grad().toFloatArray());
          e.getValue().clearGrad();
        }
      }
      try (Scope s = Scope.open()) {
        double loss =
            m.forwardBackwardCheckpointed(
                ids, logits -> Torch.crossEntropy(logits.reshape(-1, logits.size(-1)), targets));
        assertEquals(plainLoss, loss, 1e-6, name);
        for (var e : m.weights().entrySet())
          assertArrayEquals(
              plain.get(e.getKey()),
              e.getValue().grad().toFloatArray(),
              1e-6f,
              name + " " + e.getKey());
      }
    }
  }
}
