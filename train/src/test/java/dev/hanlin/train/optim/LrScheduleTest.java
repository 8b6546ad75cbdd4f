package dev.hanlin.train.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.train.optim.LrSchedule.Shape;
import org.junit.jupiter.api.Test;

class LrScheduleTest {
  @Test
  void warmupThenCosineToTheMinimum() {
    LrSchedule s = new LrSchedule(1e-3, 1e-4, 10, 110, Shape.COSINE);
    assertEquals(1e-4, s.lr(0), 1e-15); // (0+1)/10 of the peak: no wasted zero-lr step
    assertEquals(1e-3, s.lr(9), 1e-15);
    assertEquals(1e-3, s.lr(10), 1e-15); // cosine starts at the peak
    assertEquals(1e-4 + 0.9e-3 * 0.5, s.lr(60), 1e-12); // half way: the mean of peak and floor
    assertEquals(1e-4, s.lr(110), 1e-15);
    assertEquals(1e-4, s.lr(500), 1e-15); // stays at the floor past the end
    for (long t = 11; t < 110; t++) assertTrue(s.lr(t) < s.lr(t - 1));
  }

  @Test
  void linearAndConstant() {
    LrSchedule lin = new LrSchedule(2.0, 0.0, 0, 100, Shape.LINEAR);
    assertEquals(2.0, lin.lr(0));
    assertEquals(1.0, lin.lr(50), 1e-12);
    assertEquals(0.0, lin.lr(100), 1e-12);
    LrSchedule c = new LrSchedule(2.0, 0.0, 4, 100, Shape.CONSTANT);
    assertEquals(1.0, c.lr(1));
    assertEquals(2.0, c.lr(99));
  }

  @Test
  void unknownShapeNamesTheChoices() {
    var e = assertThrows(IllegalArgumentException.class, () -> Shape.parse("cosine_with_restarts"));
    assertTrue(e.getMessage().contains("[cosine, linear, constant]"), e.getMessage());
  }
}
