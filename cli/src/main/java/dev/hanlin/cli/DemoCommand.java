package dev.hanlin.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/** The embedded default job that {@code java -jar trainer.jar} runs with no arguments. */
@Command(name = "demo", description = "Run the embedded default job (no files needed).")
final class DemoCommand implements Callable<Integer> {
  @Override
  public Integer call() {
    System.out.println("demo: not yet");
    return 0;
  }
}
