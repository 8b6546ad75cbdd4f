package dev.hanlin.train.precision;

import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;

/** Everything in float32. */
public record Fp32() implements Precision {
  @Override
  public boolean bf16() {
    return false;
  }

  @Override
  public Grad.Guard enter(Device device) {
    return () -> {};
  }
}
