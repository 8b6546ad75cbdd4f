package dev.hanlin.cli;

import dev.hanlin.tokenizer.VocabExtension;
import dev.hanlin.torch.io.ProgressLine;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code --mode extend-vocab}: Chinese pieces appended to a Llama tokenizer. */
@Command(
    name = "extend-vocab",
    mixinStandardHelpOptions = true,
    description = "Learn Chinese BPE pieces and append them to a tokenizer (base ids unchanged).")
final class ExtendVocabCommand implements Callable<Integer> {
  @Option(names = "--tokenizer", required = true, description = "the base tokenizer")
  Path base;

  @Option(
      names = "--corpus",
      required = true,
      arity = "1..*",
      description = "UTF-8 text files to learn from")
  List<Path> corpus;

  @Option(names = "--vocab-size", defaultValue = "65000", description = "size after extension")
  int vocabSize;

  @Option(names = "--output", required = true, description = "folder for the HF tokenizer files")
  Path output;

  @Option(names = "--heldout", description = "text to report tokens per character and speed on")
  Path heldout;

  @Option(names = "--min-frequency", defaultValue = "2", description = "rarer pieces are skipped")
  int minFrequency;

  @Option(names = "--max-piece-length", defaultValue = "16", description = "in characters")
  int maxPieceLength;

  @Option(names = "--threads", description = "counting threads (default: all cores)")
  Integer threads;

  @Option(names = "--no-emoji", description = "do not add emoji code points as pieces")
  boolean noEmoji;

  @Override
  public Integer call() {
    int t = threads != null ? threads : Runtime.getRuntime().availableProcessors();
    var options = new VocabExtension.Options(vocabSize, minFrequency, maxPieceLength, t, !noEmoji);
    // always redrawn in place, on a terminal or not, as extend-vocab has drawn it
    var progress = new ProgressLine(System.err, true);
    TokenizerTools.extendVocab(base, corpus, heldout, output, options, progress, System.out);
    return 0;
  }
}
