package dev.hanlin.train.hooks;

import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A checkpoint's random state: the CPU generator as {@code cpu} and, on a GPU, that device's as
 * {@code cuda} (LoRA dropout draws there), so that a resumed run draws the same masks.
 */
final class RngState {
  static final String FILE = "rng_state.safetensors";

  private RngState() {}

  /** Retained copies, for the caller to release. */
  static Map<String, Tensor> save(Device device) {
    Map<String, Tensor> rng = new LinkedHashMap<>();
    rng.put("cpu", Torch.cpuRngState().retain());
    if (device.isCuda()) rng.put("cuda", Torch.rngState(device).retain());
    return rng;
  }

  static void restore(Map<String, Tensor> rng, Device device) {
    Torch.setCpuRngState(rng.get("cpu"));
    if (device.isCuda() && rng.containsKey("cuda")) Torch.setRngState(device, rng.get("cuda"));
  }
}
