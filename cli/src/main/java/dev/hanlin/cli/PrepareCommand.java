package dev.hanlin.cli;

import dev.hanlin.data.prepare.Prepare;
import dev.hanlin.data.prepare.PrepareConfig;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.IModelTransformer;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code --mode prepare}: raw corpora into token shards (see configs/prepare-example.yaml). */
@Command(
    name = "prepare",
    mixinStandardHelpOptions = true,
    modelTransformer = PrepareCommand.Flags.class,
    description =
        "Tokenize raw corpora (txt/jsonl/json/csv, .gz, folders, globs, CSV manifests with a"
            + " file_name column) once into memory-mapped token shards plus manifest.json. Flags"
            + " override the keys of --config; re-running skips unchanged inputs and resumes an"
            + " interrupted run.")
final class PrepareCommand implements Callable<Integer> {
  @Option(names = "--config", description = "YAML config (keys as in configs/prepare-example.yaml)")
  Path config;

  @Spec CommandSpec spec;

  /** A flag that sets the config key of its name: {@code --train-files} sets train_files. */
  record Flag(String name, Class<?> type, String description) {
    String key() {
      return name.substring(2).replace('-', '_');
    }

    OptionSpec option() {
      // the label picocli gives an annotated field of the key's camel-case name
      String label = "<" + String.join("", camel(key().split("_"))) + ">";
      var b = OptionSpec.builder(name).description(description).paramLabel(label);
      if (type == List.class)
        return b.type(List.class).auxiliaryTypes(String.class).splitRegex(",").build();
      if (type == Boolean.class) b.arity("1");
      return b.type(type).build();
    }

    private static String[] camel(String[] words) {
      for (int i = 1; i < words.length; i++)
        words[i] = Character.toUpperCase(words[i].charAt(0)) + words[i].substring(1);
      return words;
    }
  }

  static final List<Flag> FLAGS =
      List.of(
          new Flag("--tokenizer", String.class, "tokenizer.model, tokenizer.json, or a folder"),
          new Flag(
              "--train-files",
              List.class,
              "files, folders, globs or CSV manifests (repeat or separate with commas)"),
          new Flag("--validation-files", List.class, "validation inputs"),
          new Flag("--output-dir", String.class, "where shards/ and manifest.json go"),
          new Flag(
              "--validation-split-percentage",
              Double.class,
              "percent of train documents moved to validation (seeded, per document)"),
          new Flag("--seed", Long.class, "seed of the validation split"),
          new Flag("--text-field", String.class, "JSON field / CSV column with the text"),
          new Flag("--txt-document", String.class, "line (one document per line) or file"),
          new Flag("--keep-linebreaks", Boolean.class, "true or false"),
          new Flag("--max-train-samples", Long.class, "at most this many train documents"),
          new Flag("--max-eval-samples", Long.class, "at most this many validation documents"),
          new Flag("--max-bad-records", Long.class, "abort past this many malformed records"),
          new Flag("--workers", Integer.class, "tokenizer threads (0 = every core)"),
          new Flag("--shard-tokens", Long.class, "tokens per shard before it is closed"),
          new Flag("--progress", Boolean.class, "draw the progress bar (true/false)"));

  /** Adds {@link #FLAGS} to the command's options. */
  static final class Flags implements IModelTransformer {
    @Override
    public CommandSpec transform(CommandSpec spec) {
      FLAGS.forEach(f -> spec.addOption(f.option()));
      return spec;
    }
  }

  @Override
  public Integer call() throws Exception {
    Prepare.Result r = Prepare.run(PrepareConfig.load(config, flags()), System.err);
    System.out.print(r.summary());
    return 0;
  }

  /** The config keys the flags given set. */
  Map<String, Object> flags() {
    Map<String, Object> flags = new LinkedHashMap<>();
    for (Flag f : FLAGS) {
      Object v = spec.findOption(f.name()).getValue();
      if (v != null) flags.put(f.key(), v);
    }
    return flags;
  }
}
