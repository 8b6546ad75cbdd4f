package dev.hanlin.train.source;

import dev.hanlin.config.ConfigException;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.VocabResize;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.PrintStream;
import java.nio.file.Path;

/**
 * Grows the embeddings for a tokenizer larger than the model. When the model folder has the
 * tokenizer it was trained with and the run's tokenizer extends it, each new token starts as the
 * mean of the tokens its text used to be split into ({@link VocabResize}, as {@code --mode
 * resize-vocab} does); otherwise as the mean token.
 */
final class VocabGrowth {
  private VocabGrowth() {}

  static LlamaModel grow(LlamaModel m, Path folder, Tokenizer tokenizer, PrintStream err) {
    int old = m.config().vocabSize(), size = tokenizer.vocabSize();
    LlamaModel grown = null;
    if (Tokenizer.isIn(folder)) {
      try {
        grown = VocabResize.grow(m, Tokenizer.load(folder), tokenizer);
      } catch (ConfigException e) {
        err.println(e.getMessage());
      }
    }
    err.printf(
        "tokenizer has %d pieces, the model %d: new embeddings start as %s%n",
        size,
        old,
        grown != null
            ? "the mean of the base tokens each new piece encoded to"
            : "the mean of all embeddings");
    return grown != null ? grown : m.resizeTokenEmbeddings(size);
  }
}
