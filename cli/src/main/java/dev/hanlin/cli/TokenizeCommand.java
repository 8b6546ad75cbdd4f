package dev.hanlin.cli;

import dev.hanlin.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code --mode tokenize}: shows the ids a text becomes. */
@Command(
    name = "tokenize",
    mixinStandardHelpOptions = true,
    description = "Print the token ids of a text or of each line of a file.")
final class TokenizeCommand implements Callable<Integer> {
  @Option(
      names = "--tokenizer",
      required = true,
      description = "tokenizer.model, tokenizer.json, or a folder with either")
  Path tokenizer;

  @ArgGroup(multiplicity = "1")
  Input input;

  static final class Input {
    @Option(names = "--text", description = "the text to encode")
    String text;

    @Option(names = "--input", description = "a UTF-8 file; each line is encoded")
    Path file;
  }

  @Option(names = "--json", description = "one JSON array per input line")
  boolean json;

  @Option(names = "--bos", description = "prepend <s>")
  boolean bos;

  @Option(names = "--eos", description = "append </s>")
  boolean eos;

  @Override
  public Integer call() {
    List<String> texts =
        input.text != null ? List.of(input.text) : TokenizerTools.readLines(input.file);
    TokenizerTools.printIds(Tokenizer.load(tokenizer), texts, json, bos, eos, System.out);
    return 0;
  }
}
