package dev.hanlin.model;

import java.util.List;

/**
 * How to pick tokens: greedy at temperature 0, otherwise sampling with temperature, top-k and top-p
 * (nucleus), after HF's repetition penalty. {@code topK} 0 and {@code topP} 1 disable them.
 */
public record GenerationOptions(
    int maxNewTokens,
    double temperature,
    int topK,
    double topP,
    double repetitionPenalty,
    long seed,
    List<Integer> eosTokenIds) {

  public GenerationOptions {
    if (maxNewTokens < 0) throw new IllegalArgumentException("max-new-tokens must be >= 0");
    if (!(temperature >= 0)) throw new IllegalArgumentException("temperature must be >= 0");
    if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0");
    if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1]");
    if (!(repetitionPenalty > 0))
      throw new IllegalArgumentException("repetition-penalty must be > 0");
    eosTokenIds = List.copyOf(eosTokenIds);
  }

  /** Greedy decoding for {@code n} tokens, stopping at the given end-of-sequence ids. */
  public static GenerationOptions greedy(int n, List<Integer> eos) {
    return new GenerationOptions(n, 0, 0, 1, 1, 0, eos);
  }

  public boolean greedy() {
    return temperature == 0;
  }
}
