package dev.hanlin.cli;

import dev.hanlin.model.GenerationOptions;
import java.util.List;
import picocli.CommandLine.Option;

/** Sampling options shared by {@code chat}; the server takes them per request instead. */
final class Sampling {
  @Option(
      names = "--max-new-tokens",
      defaultValue = "512",
      description = "Most tokens per reply (default ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(
      names = "--temperature",
      defaultValue = "0.7",
      description = "0 = greedy (default ${DEFAULT-VALUE}).")
  double temperature;

  @Option(
      names = "--top-k",
      defaultValue = "0",
      description = "Keep the k most likely tokens; 0 = off.")
  int topK;

  @Option(
      names = "--top-p",
      defaultValue = "0.9",
      description = "Nucleus mass to keep; 1 = off (default ${DEFAULT-VALUE}).")
  double topP;

  @Option(
      names = "--repetition-penalty",
      defaultValue = "1.0",
      description = "HF's repetition penalty; 1 = off.")
  double repetitionPenalty;

  @Option(
      names = "--seed",
      defaultValue = "0",
      description = "Sampling seed (default ${DEFAULT-VALUE}).")
  long seed;

  GenerationOptions options(List<Integer> eos) {
    return new GenerationOptions(
        maxNewTokens, temperature, topK, topP, repetitionPenalty, seed, eos);
  }
}
