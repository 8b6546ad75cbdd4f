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

/**
 * LoRA: the base model frozen (and cast to bf16 when training on CUDA in bf16) with trainable
 * adapters, fresh ones or those of the checkpoint being resumed.
 */
final class LoraWrapping {
  private static final double GIB = 1024.0 * 1024 * 1024;

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
      base = full.withDtype(DType.BF16); // the model's one cast; quantized weights stay so
      if (base != full) full.weights().values().forEach(Tensor::release);
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
    // the adapters are fp32 (AdamW updates them directly): 4 bytes, and 12 more for the gradient
    // and the two moments
    err.printf(
        "memory: base weights %.2f GiB%s; adapters %.3f GiB, their gradients and AdamW state %.3f"
            + " GiB; plus activations%n",
        base.weightBytes() / GIB,
        base.quantizedWeights().isEmpty()
            ? ""
            : String.format(
                " (%d projections in %d bits, the rest %s)",
                base.quantizedWeights().size(),
                lora.baseBits(),
                base.dtype().name().toLowerCase(java.util.Locale.ROOT)),
        trainable * 4 / GIB,
        trainable * 12 / GIB);
    return a.applyTo(base);
  }
}
