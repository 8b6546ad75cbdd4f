package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.train.metrics.EvalMetrics;
import org.junit.jupiter.api.Test;

/** Loss, perplexity and accuracy against values worked out by hand. */
class EvaluatorTest {
  @Test
  void ignoredPositionsCountForNothing() {
    try (Scope s = Scope.open()) {
      // one sequence of 3 positions over a vocabulary of 2
      Tensor logits = Torch.fromFloats(new float[] {0f, 0f, 2f, 0f, 0f, 3f}, 1, 3, 2);
      Tensor targets = Torch.fromLongs(new long[] {1, 1, -100}, 1, 3);
      Evaluator.Sums sums = new Evaluator.Sums();
      sums.add(logits, targets);
      EvalMetrics m = sums.metrics(7);
      // position 0: logits (0, 0), target 1 -> loss ln 2, argmax 0 (first of a tie): wrong
      // position 1: logits (2, 0), target 1 -> loss ln(1 + e^2) - 0 = 2.126928, argmax 0: wrong
      // position 2: ignored (its logits favour class 1, which would be right if counted)
      double expected = (Math.log(2) + Math.log(1 + Math.exp(2))) / 2;
      assertEquals(expected, m.loss(), 1e-6);
      assertEquals(Math.exp(expected), m.perplexity(), 1e-5);
      assertEquals(0.0, m.accuracy());
      assertEquals(2, m.tokens());
      assertEquals(7, m.step());

      Tensor right = Torch.fromLongs(new long[] {0, 0, 1}, 1, 3);
      Evaluator.Sums all = new Evaluator.Sums();
      all.add(logits, right);
      // ties resolve to the first index, like torch.argmax: position 0 predicts 0
      assertEquals(1.0, all.metrics(0).accuracy());
      assertEquals(3, all.metrics(0).tokens());
    }
  }
}
