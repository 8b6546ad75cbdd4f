package dev.hanlin.cli;

import dev.hanlin.config.StrictYaml;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The top-level command. Users write {@code --mode generate ...}; each mode is a picocli
 * subcommand, so {@code --mode X} is rewritten to the subcommand {@code X} before parsing. That
 * keeps every mode's options in its own class and lets {@code --mode X --help} show them.
 */
@Command(
    name = "trainer",
    mixinStandardHelpOptions = true,
    version = "Hanlin 0.1.0",
    description = {
      "Hanlin trains Llama-family models on libtorch.",
      "Usage: java -jar trainer.jar --mode MODE [options]   (--mode MODE --help for a mode's options)"
    },
    commandListHeading = "%nModes:%n",
    subcommands = {
      GenerateCommand.class,
      ChatCommand.class,
      ServeCommand.class,
      TokenizeCommand.class,
      ExtendVocabCommand.class,
      PrepareCommand.class,
      VerifyDataCommand.class,
      PretrainCommand.class,
      SftCommand.class,
      MergeLoraCommand.class,
      ResizeVocabCommand.class,
      EvalCommand.class,
      MemoryCommand.class
    })
public final class Cli implements Runnable {

  @Override
  public void run() {
    // No mode: the embedded default job (pretraining demo), so `java -jar trainer.jar` does
    // something useful.
    new CommandLine(new PretrainCommand()).execute();
  }

  /** Parses, runs, and returns the exit code. */
  public static int run(String... args) {
    CommandLine cl = new CommandLine(new Cli());
    cl.setExecutionExceptionHandler(
        (ex, cmd, parsed) -> {
          cmd.getErr().println("error: " + ex.getMessage());
          if (System.getenv("HANLIN_DEBUG") != null) ex.printStackTrace(cmd.getErr());
          return 1;
        });
    String mangled = mangledArgument(args, System.getProperty("sun.jnu.encoding", "UTF-8"));
    if (mangled != null) {
      cl.getErr().println("error: " + mangled);
      return 2;
    }
    String[] rewritten = rewriteMode(args.length == 0 ? new String[] {"pretrain"} : args);
    String mode = rewritten.length > 0 ? rewritten[0] : "";
    boolean noValue = mode.equals("--mode") || mode.equals("--mode=");
    if (noValue || !mode.startsWith("-") && !cl.getSubcommands().containsKey(mode)) {
      // picocli would say "Unmatched argument at index 0"; say what a mode is instead
      List<Object> modes = new ArrayList<>(cl.getSubcommands().keySet());
      String near = noValue ? null : StrictYaml.closest(mode, modes);
      cl.getErr()
          .println(
              "error: "
                  + (noValue ? "--mode needs a value" : "unknown mode '" + mode + "'")
                  + (near == null ? "" : " (did you mean '" + near + "'?)")
                  + "; the modes are "
                  + modes.stream().map(String::valueOf).collect(Collectors.joining(", "))
                  + " (--mode MODE --help shows a mode's options)");
      return 2;
    }
    return cl.execute(rewritten);
  }

  /**
   * Under a locale that is not UTF-8 (LANG unset: POSIX), the JVM decodes the command line as ASCII
   * before {@code main}, so {@code --prompt 春风} arrives as U+FFFD characters and would be trained
   * on, tokenized or generated from as such. Returns what to do then, or null.
   */
  static String mangledArgument(String[] args, String jnuEncoding) {
    if (jnuEncoding.equalsIgnoreCase("UTF-8")) return null;
    for (String a : args)
      if (a.indexOf('\uFFFD') >= 0)
        return "the argument '"
            + a
            + "' lost its non-ASCII characters: the JVM read the command line as "
            + jnuEncoding
            + " because the locale is not UTF-8. Run with LC_ALL=C.UTF-8 (bin/trainer sets it)";
    return null;
  }

  /** {@code [..., --mode, X, ...]} or {@code --mode=X} becomes {@code [X, ...]}. */
  static String[] rewriteMode(String[] args) {
    List<String> rest = new ArrayList<>();
    String mode = null;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (mode == null && a.equals("--mode") && i + 1 < args.length) {
        mode = args[++i];
      } else if (mode == null && a.startsWith("--mode=")) {
        mode = a.substring("--mode=".length());
      } else {
        rest.add(a);
      }
    }
    if (mode != null) rest.addFirst(mode);
    return rest.toArray(String[]::new);
  }
}
