package dev.hanlin.train;

import dev.hanlin.data.loader.BlockSize;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.train.hooks.MemoryPlan;
import dev.hanlin.train.source.ModelBuilder;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The memory plan of a config without training ({@code --mode memory}): the model's shape is read
 * from its config.json (no weights are loaded), the run's own plan is printed as a run prints it at
 * start, then every zero stage with and without offloading for comparison.
 */
public final class MemoryReport {
  private MemoryReport() {}

  /** The plan of {@code cfg} on {@code world} GPUs, and the alternatives. */
  public static String of(PretrainConfig cfg, int world) throws IOException {
    if (world < 1) throw new IllegalArgumentException("--world must be >= 1, got " + world);
    if (cfg.lora() != null)
      throw new IllegalArgumentException(
          "the memory plan covers full training; a LoRA run holds the frozen base (bf16 or"
              + " quantized) and small adapters");
    LlamaConfig c = ModelBuilder.expectedConfig(cfg, Tokenizer.load(Path.of(cfg.tokenizer())));
    int block = BlockSize.resolve(cfg.blockSize(), c.maxPositionEmbeddings());
    // a plan is for GPUs, where bf16 is the default
    boolean bf16 = cfg.bf16() == null || cfg.bf16();
    MemoryPlan.Kind kind =
        cfg.offloadsOptimizer()
            ? MemoryPlan.Kind.OFFLOAD
            : cfg.masterWeights()
                ? MemoryPlan.Kind.MASTER_WEIGHTS
                : bf16 ? MemoryPlan.Kind.AUTOCAST : MemoryPlan.Kind.FP32;
    var setup =
        new MemoryPlan.Setup(
            kind,
            cfg.zeroStage(),
            world,
            cfg.trainBatchSize(),
            block,
            cfg.gradientCheckpointing(),
            cfg.overlapComm() ? cfg.reduceBucketSize() : 0);
    return MemoryPlan.of(c, setup).render() + "\n" + MemoryPlan.compare(c, setup);
  }
}
