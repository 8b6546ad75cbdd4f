package dev.hanlin.train;

import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import java.util.Map;

/**
 * Weights with a NaN or an infinity cannot train (every step is skipped) nor be used, so a run
 * refuses them where they come in (a checkpoint, an HF folder) and where they go out (the export),
 * naming the tensor, instead of "succeeding" with a broken model.
 */
public final class FiniteWeights {
  private FiniteWeights() {}

  /**
   * @param where what holds the weights, for the message ("checkpoint X", "model folder X")
   * @throws IllegalStateException naming the first tensor with a non-finite value, and how many
   */
  public static void require(Map<String, Tensor> weights, String where) {
    for (var e : weights.entrySet()) {
      long bad;
      try (Scope s = Scope.open()) {
        bad = (long) e.getValue().isFinite().logicalNot().sum().item();
      }
      if (bad > 0)
        throw new IllegalStateException(
            where
                + ": "
                + e.getKey()
                + " has "
                + bad
                + " non-finite values (NaN or infinity) of "
                + e.getValue().numel());
    }
  }
}
