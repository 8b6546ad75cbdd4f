package dev.hanlin.train.source;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.LoraAdapters;
import dev.hanlin.model.LoraConfig;
import dev.hanlin.torch.Cuda;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.train.Checkpoints;
import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * LoRA: the base model frozen (and cast to bf16 when training on CUDA in bf16) with trainable
 * adapters, fresh ones or those of the checkpoint being resumed.
 */
final class LoraWrapping {
  private LoraWrapping() {}

  static LlamaModel wrap(
      LlamaModel full,
      LoraConfig lora,
      long seed,
      Checkpoints.Loaded ck,
      Device device,
      boolean bf16,
      PrintStream err) {
    LlamaModel base = full;
    for (Tensor w : full.weights().values()) w.requiresGrad(false);
    if (bf16 && device.isCuda()) {
      Map<String, Tensor> w = new LinkedHashMap<>();
      full.weights().forEach((k, v) -> w.put(k, v.detach().to(DType.BF16).retain()));
      full.weights().values().forEach(Tensor::release);
      base = LlamaModel.fromWeights(full.config().withDtype(DType.BF16), w);
      // the fp32 copy the engine loads first is gone: the peak reported at the end is training's
      Cuda.resetPeak(device.index());
    }
    LoraAdapters a =
        ck == null
            ? LoraAdapters.init(base, lora, seed)
            : LoraAdapters.fromWeights(base.config(), lora, ck.weights());
    for (Tensor t : a.weights().values()) t.requiresGrad(true);
    long trainable = a.weights().values().stream().mapToLong(Tensor::numel).sum();
    err.printf(
        "LoRA r=%d alpha=%s on %s%s: %,d trainable parameters (%.3f%% of %,d)%n",
        lora.r(),
        lora.alpha(),
        lora.targetModules(),
        lora.modulesToSave().isEmpty() ? "" : " + " + lora.modulesToSave(),
        trainable,
        100.0 * trainable / base.config().parameterCount(),
        base.config().parameterCount());
    return a.applyTo(base);
  }
}
