package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The checkpointed backward says when gradients are final, as ZeRO-2 needs to send them on at once:
 * the head, each layer from the last, then the embedding (with a tied lm_head too), and every
 * weight's gradient at its stage equals its gradient at the end.
 */
class BackwardStagesTest {
  @Test
  void eachStageReportsFinalGradients() throws Exception {
    for (String name : TestData.PARITY_MODELS) {
      LlamaModel m = TestData.trainableParityModel(name);
      Tensor ids = Torch.fromLongs(new long[] {5, 9, 33, 7, 81, 12, 3, 44}, 2, 4).retain();
      Tensor targets = Torch.fromLongs(new long[] {9, 33, 7, 81, 12, 3, 44, 100}, 8).retain();
      int layers = m.config().numHiddenLayers();
      List<Integer> order = new ArrayList<>();
      Map<String, float[]> atStage = new LinkedHashMap<>();
      try (Scope s = Scope.open()) {
        RecomputingBackward.run(
            m,
            ids,
            null,
            null,
            logits -> Torch.crossEntropy(logits.reshape(-1, logits.size(-1)), targets),
            stage -> {
              order.add(stage);
              m.weights()
                  .forEach(
                      (n, w) -> {
                        if (RecomputingBackward.stageOf(n, layers) == stage)
                          atStage.put(n, w.grad().toFloatArray());
                      });
            });
        List<Integer> expected = new ArrayList<>(List.of(layers));
        for (int i = layers - 1; i >= -1; i--) expected.add(i);
        assertEquals(expected, order, name);
        assertEquals(m.weights().keySet(), atStage.keySet(), name + ": every weight has a stage");
        for (var e : m.weights().entrySet())
          assertArrayEquals(
              e.getValue().grad().toFloatArray(), atStage.get(e.getKey()), name + " " + e.getKey());
      }
      assertEquals(layers, RecomputingBackward.stageOf("model.norm.weight", layers));
      assertEquals(
          1, RecomputingBackward.stageOf("model.layers.1.self_attn.q_proj.lora_A.weight", layers));
      assertEquals(-1, RecomputingBackward.stageOf("model.embed_tokens.weight", layers));
    }
  }
}
