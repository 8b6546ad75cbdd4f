package dev.hanlin.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/** {@code --mode generate}: text from a model folder. */
@Command(name = "generate", description = "Generate from an HF model folder with a KV cache.")
final class GenerateCommand implements Callable<Integer> {
  @Override
  public Integer call() {
    return 0;
  }
}
