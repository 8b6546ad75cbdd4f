package dev.hanlin.cli;

import dev.hanlin.model.VocabResize;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code --mode resize-vocab}: a base HF model grown to an extended tokenizer (from {@code
 * extend-vocab}), each new piece's rows starting as the mean of its base sub-pieces' rows.
 */
@Command(
    name = "resize-vocab",
    mixinStandardHelpOptions = true,
    description =
        "Grow an HF model folder's embedding and head to an extended tokenizer; new rows start as"
            + " the mean of the base pieces each new piece encoded to. Writes an HF folder.")
final class ResizeVocabCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      description = "The base HF model folder, with the tokenizer it was trained with.")
  Path model;

  @Option(
      names = "--tokenizer",
      required = true,
      description = "The extended tokenizer (folder, tokenizer.model or tokenizer.json).")
  Path tokenizer;

  @Option(
      names = "--output",
      required = true,
      description = "New folder for the resized model (must not exist, or be empty).")
  Path output;

  @Override
  public Integer call() throws Exception {
    VocabResize.Result r = VocabResize.resizeFolder(model, tokenizer, output);
    System.err.printf(
        "resized %s from %,d to %,d tokens: %s%n",
        model, r.oldVocab(), r.newVocab(), r.output().toAbsolutePath());
    return 0;
  }
}
