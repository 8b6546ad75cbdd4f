package dev.hanlin.cli;

/** The trainer's entry point: {@code java -jar trainer.jar --mode MODE [options]}. */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    System.exit(Cli.run(args));
  }
}
