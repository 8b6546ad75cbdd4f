package dev.hanlin.train.source;

import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Device;
import dev.hanlin.train.Checkpoints;
import dev.hanlin.train.PretrainConfig;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Where a run's float32 weights come from: a fresh init from {@code model_config} (with {@code
 * config_overrides}), an HF model folder ({@code model_name_or_path}), or the checkpoint being
 * resumed. {@link ModelBuilder} grows the vocabulary, applies the precision and wraps LoRA.
 */
public sealed interface ModelSource permits FreshInit, HfFolder, Resume {
  /** The model, float32, on {@code device}. */
  LlamaModel load(Device device) throws IOException;

  /** The model config this source gives (before vocabulary growth). */
  LlamaConfig config() throws IOException;

  /**
   * The source of a run: the checkpoint {@code ck} when resuming full weights, else the model
   * folder or a fresh init. A LoRA run's base never comes from its checkpoint, which holds only the
   * adapters.
   */
  static ModelSource of(PretrainConfig cfg, Checkpoints.Loaded ck) {
    if (ck != null && cfg.lora() == null) return new Resume(ck);
    return base(cfg);
  }

  /** The model folder or the fresh init of {@code cfg}, ignoring any checkpoint. */
  static ModelSource base(PretrainConfig cfg) {
    if (cfg.modelNameOrPath() != null)
      return new HfFolder(
          Path.of(cfg.modelNameOrPath()), cfg.lora() == null ? 0 : cfg.lora().baseBits());
    return new FreshInit(Path.of(cfg.modelConfig()), cfg.configOverrides(), cfg.seed());
  }
}
