package dev.hanlin.train.source;

import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.train.Checkpoints;
import dev.hanlin.train.PretrainConfig;
import dev.hanlin.train.precision.Precision;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;

/**
 * The model a run trains: its {@link ModelSource}'s weights, the vocabulary grown to the
 * tokenizer's, in the run's {@link Precision}, every weight trainable, or with LoRA a frozen base
 * and trainable adapters.
 */
public final class ModelBuilder {
  private ModelBuilder() {}

  public static LlamaModel build(
      PretrainConfig cfg,
      Checkpoints.Loaded ck,
      Tokenizer tokenizer,
      Precision precision,
      Device device,
      PrintStream err)
      throws IOException {
    LlamaModel m = ModelSource.of(cfg, ck).load(precision.buildOn(device));
    if (tokenizer.vocabSize() > m.config().vocabSize()) {
      if (cfg.lora() != null)
        cfg.lora()
            .requireGrownModulesSaved(
                m.config().tieWordEmbeddings(), tokenizer.vocabSize(), m.config().vocabSize());
      Path folder = cfg.modelNameOrPath() == null ? null : Path.of(cfg.modelNameOrPath());
      m = VocabGrowth.grow(m, folder, tokenizer, err);
    }
    m = precision.adopt(m, err);
    for (Tensor w : m.weights().values()) w.requiresGrad(true);
    if (cfg.lora() == null) return m;
    return LoraWrapping.wrap(m, cfg.lora(), cfg.seed(), ck, device, precision.bf16(), err);
  }

  /**
   * The model config the run builds (before the precision), for checking the checkpoint to resume;
   * also checks the model folder exists.
   */
  public static LlamaConfig expectedConfig(PretrainConfig cfg, Tokenizer tokenizer)
      throws IOException {
    LlamaConfig c = ModelSource.base(cfg).config();
    return tokenizer.vocabSize() > c.vocabSize() ? c.withVocabSize(tokenizer.vocabSize()) : c;
  }

  /**
   * What can be checked of the model folder before anything else: that it exists with a
   * config.json, and that {@code out} is not it.
   */
  public static void checkFolder(PretrainConfig cfg, Path out) {
    if (!(ModelSource.base(cfg) instanceof HfFolder f)) return;
    f.require();
    f.requireNotOutput(out);
  }
}
