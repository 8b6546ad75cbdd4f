package dev.hanlin.cli;

import dev.hanlin.data.prepare.Prepare;
import dev.hanlin.data.prepare.PrepareConfig;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code --mode prepare}: raw corpora into token shards (see configs/prepare-example.yaml). */
@Command(
    name = "prepare",
    mixinStandardHelpOptions = true,
    description =
        "Tokenize raw corpora (txt/jsonl/json/csv, .gz, folders, globs, CSV manifests with a"
            + " file_name column) once into memory-mapped token shards plus manifest.json. Flags"
            + " override the keys of --config; re-running skips unchanged inputs and resumes an"
            + " interrupted run.")
final class PrepareCommand implements Callable<Integer> {
  @Option(names = "--config", description = "YAML config (keys as in configs/prepare-example.yaml)")
  Path config;

  @Option(names = "--tokenizer", description = "tokenizer.model, tokenizer.json, or a folder")
  String tokenizer;

  @Option(
      names = "--train-files",
      split = ",",
      description = "files, folders, globs or CSV manifests (repeat or separate with commas)")
  List<String> trainFiles;

  @Option(names = "--validation-files", split = ",", description = "validation inputs")
  List<String> validationFiles;

  @Option(names = "--output-dir", description = "where shards/ and manifest.json go")
  String outputDir;

  @Option(
      names = "--validation-split-percentage",
      description = "percent of train documents moved to validation (seeded, per document)")
  Double validationSplitPercentage;

  @Option(names = "--seed", description = "seed of the validation split")
  Long seed;

  @Option(names = "--text-field", description = "JSON field / CSV column with the text")
  String textField;

  @Option(names = "--txt-document", description = "line (one document per line) or file")
  String txtDocument;

  @Option(names = "--keep-linebreaks", arity = "1", description = "true or false")
  Boolean keepLinebreaks;

  @Option(names = "--max-train-samples", description = "at most this many train documents")
  Long maxTrainSamples;

  @Option(names = "--max-eval-samples", description = "at most this many validation documents")
  Long maxEvalSamples;

  @Option(names = "--max-bad-records", description = "abort past this many malformed records")
  Long maxBadRecords;

  @Option(names = "--workers", description = "tokenizer threads (0 = every core)")
  Integer workers;

  @Option(names = "--shard-tokens", description = "tokens per shard before it is closed")
  Long shardTokens;

  @Option(names = "--progress", arity = "1", description = "draw the progress bar (true/false)")
  Boolean progress;

  @Override
  public Integer call() throws Exception {
    Map<String, Object> flags = new LinkedHashMap<>();
    flags.put("tokenizer", tokenizer);
    flags.put("train_files", trainFiles);
    flags.put("validation_files", validationFiles);
    flags.put("output_dir", outputDir);
    flags.put("validation_split_percentage", validationSplitPercentage);
    flags.put("seed", seed);
    flags.put("text_field", textField);
    flags.put("txt_document", txtDocument);
    flags.put("keep_linebreaks", keepLinebreaks);
    flags.put("max_train_samples", maxTrainSamples);
    flags.put("max_eval_samples", maxEvalSamples);
    flags.put("max_bad_records", maxBadRecords);
    flags.put("workers", workers);
    flags.put("shard_tokens", shardTokens);
    flags.put("progress", progress);
    flags.values().removeIf(v -> v == null);
    Prepare.Result r = Prepare.run(PrepareConfig.load(config, flags), System.err);
    System.out.print(r.summary());
    return 0;
  }
}
