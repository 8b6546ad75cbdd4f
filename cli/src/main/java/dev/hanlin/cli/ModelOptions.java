package dev.hanlin.cli;

import dev.hanlin.tokenizer.Tokenizer;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * The options that name a trained model to run ({@code eval}, {@code generate}, {@code chat},
 * {@code serve}): its HF folder, a LoRA adapter on it and the tokenizer that goes with them.
 */
final class ModelOptions {
  @Option(
      names = "--model",
      required = true,
      description = "HF model folder (config.json, safetensors, tokenizer).")
  Path model;

  @Option(names = "--adapter", description = "A PEFT LoRA adapter folder to apply to the model.")
  Path adapter;

  @Option(
      names = "--tokenizer",
      description = "tokenizer.model / tokenizer.json (default: the adapter's, else the model's).")
  Path tokenizer;

  /**
   * --tokenizer, else the adapter's folder when it has one (a run on an extended vocabulary saves
   * it there), else the model's.
   */
  Path tokenizerPath() {
    if (tokenizer != null) return tokenizer;
    return Tokenizer.isIn(adapter) ? adapter : model;
  }

  /** The tokenizer of {@link #tokenizerPath}, or null when none is given and none is there. */
  Tokenizer tokenizerIfAny() {
    Path p = tokenizerPath();
    return tokenizer != null || Tokenizer.isIn(p) ? Tokenizer.load(p) : null;
  }
}
