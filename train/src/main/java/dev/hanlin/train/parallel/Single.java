package dev.hanlin.train.parallel;

import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.dist.Group;
import java.util.Map;

/** One process: nothing to communicate. */
record Single(Group group) implements Parallelism {
  @Override
  public void start(Map<String, Tensor> trainable) {}
}
