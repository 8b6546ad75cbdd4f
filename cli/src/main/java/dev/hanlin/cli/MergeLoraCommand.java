package dev.hanlin.cli;

import dev.hanlin.model.LoraConfig;
import dev.hanlin.model.LoraMerge;
import java.nio.file.Path;
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
    LoraConfig c = LoraMerge.merge(model, adapter, output);
    System.err.printf(
        "merged %s (r=%d, %s) into %s: %s%n",
        adapter, c.r(), c.targetModules(), model, output.toAbsolutePath());
    return 0;
  }
}
