package dev.hanlin.train.precision;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;

/**
 * Float32 weights, gradients and optimizer state; forward and backward under bf16 autocast; the
 * export cast to bf16.
 */
public record Autocast() implements Precision {
  @Override
  public boolean bf16() {
    return true;
  }

  @Override
  public Grad.Guard enter(Device device) {
    return dev.hanlin.torch.Autocast.enable(device, DType.BF16);
  }

  @Override
  public LlamaModel exported(LlamaModel model) {
    return Precision.bf16Model(model);
  }
}
