package dev.hanlin.train;

import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.train.metrics.JsonlListener;
import dev.hanlin.train.metrics.PlotListener;
import dev.hanlin.train.metrics.TensorBoardListener;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * What a run writes into {@code output_dir}, so that {@code --overwrite-output-dir} can remove
 * exactly that: checkpoints (and their half-written temporary folders), {@code config.yaml}, {@code
 * metrics.jsonl}, {@code loss.png}, the TensorBoard event files under {@code runs/}, and the final
 * export (HF model files, PEFT adapter files, tokenizer files). Anything else in the folder (the
 * demo's {@code data/} and {@code inputs/}, a user's notes) is not the run's and is left alone.
 */
final class RunOutputs {
  private RunOutputs() {}

  /** Top-level files a run (or its export) writes, by exact name or pattern. */
  private static final Pattern FILE =
      Pattern.compile(
          String.join(
              "|",
              "config\\.yaml",
              Pattern.quote(JsonlListener.FILE_NAME) + "(\\.tmp)?",
              Pattern.quote(PlotListener.FILE_NAME) + "(\\.tmp)?",
              // the HF export (HfCheckpoint.save, ShardedCheckpoint) and its temporaries
              "config\\.json(\\.tmp)?",
              "generation_config\\.json(\\.tmp)?",
              "model\\.safetensors(\\.index\\.json)?(\\.tmp)?",
              "model-\\d{5}-of-\\d{5}\\.safetensors(\\.tmp)?",
              // a LoRA run's export (PeftAdapter.save)
              "adapter_config\\.json(\\.tmp)?",
              "adapter_model\\.safetensors(\\.tmp)?",
              // the tokenizer copied beside the model
              Tokenizer.FILES.stream().map(Pattern::quote).collect(Collectors.joining("|"))));

  /** Checkpoint folders, complete or half-written. */
  private static final Pattern CHECKPOINT = Pattern.compile("\\.?checkpoint-\\d+(\\.tmp)?");

  private static final Pattern EVENTS = Pattern.compile("events\\.out\\.tfevents\\..*");

  /** The run's files and folders now in {@code out}, in a stable order. */
  static List<Path> find(Path out) throws IOException {
    List<Path> found = new ArrayList<>();
    if (!Files.isDirectory(out)) return found;
    try (Stream<Path> s = Files.list(out)) {
      for (Path p : s.sorted().toList()) {
        String n = p.getFileName().toString();
        if (Files.isDirectory(p) ? CHECKPOINT.matcher(n).matches() : FILE.matcher(n).matches())
          found.add(p);
      }
    }
    Path runs = out.resolve(TensorBoardListener.DIR_NAME);
    if (Files.isDirectory(runs)) {
      try (Stream<Path> s = Files.list(runs)) {
        s.filter(p -> EVENTS.matcher(p.getFileName().toString()).matches())
            .sorted()
            .forEach(found::add);
      }
    }
    return found;
  }

  /**
   * Removes the earlier run's outputs from {@code out} (and {@code runs/} when that leaves it
   * empty); returns how many files and folders went.
   */
  static int clear(Path out) throws IOException {
    List<Path> all = find(out);
    for (Path p : all) Checkpoints.deleteTree(p);
    Path runs = out.resolve(TensorBoardListener.DIR_NAME);
    if (Files.isDirectory(runs)) {
      try (Stream<Path> s = Files.list(runs)) {
        if (s.findAny().isEmpty()) Files.delete(runs);
      }
    }
    return all.size();
  }
}
