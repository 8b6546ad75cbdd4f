package dev.hanlin.model;

import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * A base model and a PEFT LoRA adapter made into one HF folder whose weights are {@code W + scaling
 * · B A} (and the adapter's saved modules), as PEFT's {@code merge_and_unload} gives: what {@code
 * --mode merge-lora} does.
 */
public final class LoraMerge {
  private LoraMerge() {}

  /**
   * Merges the adapter folder {@code adapter} into the base model folder {@code model} and writes
   * the result to {@code output}, in the dtype the base was saved in, with the adapter's tokenizer
   * files where it has them (a run on an extended vocabulary saves them there) and the base's
   * otherwise. Returns the adapter's configuration.
   */
  public static LoraConfig merge(Path model, Path adapter, Path output) throws IOException {
    LlamaModel base = HfCheckpoint.load(model, DType.F32, Device.CPU);
    DType saved = LlamaConfig.read(model.resolve("config.json")).dtype(); // as the base was saved
    // grown to the adapter's saved embed_tokens/lm_head rows when it was trained on a larger vocab
    LlamaModel adapted = PeftAdapter.loadOnto(adapter, base, Device.CPU);
    LoraAdapters a = adapted.lora();
    LlamaModel merged = a.merge(adapted);
    merged = merged.withDtype(saved);
    HfCheckpoint.save(merged, output, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES);
    for (String f : Tokenizer.FILES) {
      Path src = Files.exists(adapter.resolve(f)) ? adapter.resolve(f) : model.resolve(f);
      if (Files.exists(src))
        Files.copy(src, output.resolve(f), StandardCopyOption.REPLACE_EXISTING);
    }
    return a.config();
  }
}
