package dev.hanlin.data.prepare;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.hanlin.config.StrictYaml;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What {@code --mode prepare} does: which inputs, how documents are cut out of them, how the
 * validation split is made, and where the shards go. Keys are the YAML names; see {@code
 * configs/prepare-example.yaml}. Defaults are applied and values checked here.
 *
 * @param tokenizer a {@code tokenizer.model}, {@code tokenizer.json}, or a folder holding one
 * @param trainFiles files, folders, globs, or CSV manifests with a {@code file_name} column
 * @param validationFiles like {@code trainFiles}; when given, no split is taken from the train
 *     files
 * @param outputDir where the shards and {@code manifest.json} go
 * @param validationSplitPercentage percent of train documents (seeded, by document) for validation
 * @param seed seeds the validation split
 * @param textField the JSON field or CSV column holding the text
 * @param txtDocument {@code line} (one document per line) or {@code file} (one per file)
 * @param keepLinebreaks with {@code line}, whether each document keeps its trailing newline
 * @param maxTrainSamples at most this many train documents (in input order), or null for all
 * @param maxEvalSamples at most this many validation documents, or null for all
 * @param maxBadRecords abort when more records than this are malformed or lack the text field
 * @param workers tokenizer threads; 0 means every core
 * @param shardTokens a shard is closed after the batch of documents that brings it past this many
 *     tokens; each close is a checkpoint that an interrupted run resumes from
 * @param progress whether to draw a progress bar on stderr
 */
public record PrepareConfig(
    @JsonProperty("tokenizer") String tokenizer,
    @JsonProperty("train_files") List<String> trainFiles,
    @JsonProperty("validation_files") List<String> validationFiles,
    @JsonProperty("output_dir") String outputDir,
    @JsonProperty("validation_split_percentage") Double validationSplitPercentage,
    @JsonProperty("seed") Long seed,
    @JsonProperty("text_field") String textField,
    @JsonProperty("txt_document") String txtDocument,
    @JsonProperty("keep_linebreaks") Boolean keepLinebreaks,
    @JsonProperty("max_train_samples") Long maxTrainSamples,
    @JsonProperty("max_eval_samples") Long maxEvalSamples,
    @JsonProperty("max_bad_records") Long maxBadRecords,
    @JsonProperty("workers") Integer workers,
    @JsonProperty("shard_tokens") Long shardTokens,
    @JsonProperty("progress") Boolean progress) {

  public PrepareConfig {
    if (tokenizer == null || tokenizer.isBlank()) {
      throw new IllegalArgumentException("'tokenizer' is required");
    }
    if (outputDir == null || outputDir.isBlank()) {
      throw new IllegalArgumentException("'output_dir' is required");
    }
    trainFiles = trainFiles == null ? List.of() : List.copyOf(trainFiles);
    validationFiles = validationFiles == null ? List.of() : List.copyOf(validationFiles);
    if (trainFiles.isEmpty()) throw new IllegalArgumentException("'train_files' is empty");
    validationSplitPercentage = validationSplitPercentage == null ? 0.0 : validationSplitPercentage;
    if (!(validationSplitPercentage >= 0 && validationSplitPercentage < 100)) {
      throw new IllegalArgumentException(
          "'validation_split_percentage' must be in [0, 100), got " + validationSplitPercentage);
    }
    if (!validationFiles.isEmpty() && validationSplitPercentage > 0) {
      throw new IllegalArgumentException(
          "give either 'validation_files' or 'validation_split_percentage', not both");
    }
    seed = seed == null ? 42L : seed;
    textField = textField == null ? "text" : textField;
    txtDocument = txtDocument == null ? "line" : txtDocument;
    if (!txtDocument.equals("line") && !txtDocument.equals("file")) {
      throw new IllegalArgumentException(
          "'txt_document' must be 'line' or 'file', got '" + txtDocument + "'");
    }
    keepLinebreaks = keepLinebreaks == null ? Boolean.TRUE : keepLinebreaks;
    if (maxTrainSamples != null && maxTrainSamples < 0) {
      throw new IllegalArgumentException("'max_train_samples' must be >= 0");
    }
    if (maxEvalSamples != null && maxEvalSamples < 0) {
      throw new IllegalArgumentException("'max_eval_samples' must be >= 0");
    }
    maxBadRecords = maxBadRecords == null ? 100L : maxBadRecords;
    if (maxBadRecords < 0) throw new IllegalArgumentException("'max_bad_records' must be >= 0");
    workers =
        workers == null || workers == 0 ? Runtime.getRuntime().availableProcessors() : workers;
    if (workers < 1) throw new IllegalArgumentException("'workers' must be >= 1 (0 = all cores)");
    shardTokens = shardTokens == null ? 100_000_000L : shardTokens;
    if (shardTokens < 1) throw new IllegalArgumentException("'shard_tokens' must be >= 1");
    progress = progress == null ? Boolean.TRUE : progress;
  }

  /**
   * The three keys without a default, every other key at its default (as a YAML file with only
   * these keys gives: the defaults live in the compact constructor only) until a {@code with...}
   * changes it; each wither takes null as "the default".
   */
  public static PrepareConfig of(String tokenizer, List<String> trainFiles, String outputDir) {
    Map<String, Object> keys =
        new HashMap<>(); // null values allowed: "required" errors name the key
    keys.put("tokenizer", tokenizer);
    keys.put("train_files", trainFiles);
    keys.put("output_dir", outputDir);
    return load(null, keys);
  }

  /** With these validation inputs (like {@code train_files}). */
  public PrepareConfig withValidationFiles(List<String> v) {
    return new PrepareConfig(
        tokenizer,
        trainFiles,
        v,
        outputDir,
        validationSplitPercentage,
        seed,
        textField,
        txtDocument,
        keepLinebreaks,
        maxTrainSamples,
        maxEvalSamples,
        maxBadRecords,
        workers,
        shardTokens,
        progress);
  }

  /** With this percent of train documents for validation. */
  public PrepareConfig withValidationSplitPercentage(Double v) {
    return new PrepareConfig(
        tokenizer,
        trainFiles,
        validationFiles,
        outputDir,
        v,
        seed,
        textField,
        txtDocument,
        keepLinebreaks,
        maxTrainSamples,
        maxEvalSamples,
        maxBadRecords,
        workers,
        shardTokens,
        progress);
  }

  /** With this seed for the validation split. */
  public PrepareConfig withSeed(Long v) {
    return new PrepareConfig(
        tokenizer,
        trainFiles,
        validationFiles,
        outputDir,
        validationSplitPercentage,
        v,
        textField,
        txtDocument,
        keepLinebreaks,
        maxTrainSamples,
        maxEvalSamples,
        maxBadRecords,
        workers,
        shardTokens,
        progress);
  }

  /** With this JSON field or CSV column for the text. */
  public PrepareConfig withTextField(String v) {
    return new PrepareConfig(
        tokenizer,
        trainFiles,
        validationFiles,
        outputDir,
        validationSplitPercentage,
        seed,
        v,
        txtDocument,
        keepLinebreaks,
        maxTrainSamples,
        maxEvalSamples,
        maxBadRecords,
        workers,
        shardTokens,
        progress);
  }

  /** With at most this many train documents (null: all). */
  public PrepareConfig withMaxTrainSamples(Long v) {
    return new PrepareConfig(
        tokenizer,
        trainFiles,
        validationFiles,
        outputDir,
        validationSplitPercentage,
        seed,
        textField,
        txtDocument,
        keepLinebreaks,
        v,
        maxEvalSamples,
        maxBadRecords,
        workers,
        shardTokens,
        progress);
  }

  /** With at most this many validation documents (null: all). */
  public PrepareConfig withMaxEvalSamples(Long v) {
    return new PrepareConfig(
        tokenizer,
        trainFiles,
        validationFiles,
        outputDir,
        validationSplitPercentage,
        seed,
        textField,
        txtDocument,
        keepLinebreaks,
        maxTrainSamples,
        v,
        maxBadRecords,
        workers,
        shardTokens,
        progress);
  }

  /** Reads a YAML file (or null) with flag overrides on top, strictly. */
  public static PrepareConfig load(Path yaml, Map<String, Object> overrides) {
    return StrictYaml.read(yaml, PrepareConfig.class, overrides);
  }

  /** How this config cuts documents out of files. */
  public DocumentReader.Options readerOptions() {
    return new DocumentReader.Options(textField, txtDocument.equals("file"), keepLinebreaks);
  }
}
