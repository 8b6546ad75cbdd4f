package dev.hanlin.cli;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.LoraAdapters;
import dev.hanlin.model.PeftAdapter;
import dev.hanlin.tokenizer.Tools;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code --mode merge-lora}: base model + PEFT adapter to one HF folder whose weights are {@code W
 * + scaling · B A} (and the saved modules), as PEFT's {@code merge_and_unload} gives.
 */
@Command(
    name = "merge-lora",
    mixinStandardHelpOptions = true,
    description = "Merge a LoRA adapter (PEFT layout) into its base model; write an HF folder.")
final class MergeLoraCommand implements Callable<Integer> {
  @Option(names = "--model", required = true, description = "The base model's HF folder.")
  Path model;

  @Option(names = "--adapter", required = true, description = "The adapter folder.")
  Path adapter;

  @Option(names = "--output", required = true, description = "Where to write the merged model.")
  Path output;

  @Override
  public Integer call() throws Exception {
    LlamaModel base = HfCheckpoint.load(model, DType.F32, Device.CPU);
    DType saved = LlamaConfig.read(model.resolve("config.json")).dtype(); // as the base was saved
    // grown to the adapter's saved embed_tokens/lm_head rows when it was trained on a larger vocab
    LlamaModel adapted = PeftAdapter.loadOnto(adapter, base, Device.CPU);
    LoraAdapters a = adapted.lora();
    LlamaModel merged = a.merge(adapted);
    merged = merged.withDtype(saved);
    HfCheckpoint.save(merged, output, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES);
    // the adapter's tokenizer wins: a run with an extended vocabulary exports it there
    for (String f : Tools.TOKENIZER_FILES) {
      Path src = Files.exists(adapter.resolve(f)) ? adapter.resolve(f) : model.resolve(f);
      if (Files.exists(src))
        Files.copy(src, output.resolve(f), StandardCopyOption.REPLACE_EXISTING);
    }
    System.err.printf(
        "merged %s (r=%d, %s) into %s: %s%n",
        adapter, a.config().r(), a.config().targetModules(), model, output.toAbsolutePath());
    return 0;
  }
}
