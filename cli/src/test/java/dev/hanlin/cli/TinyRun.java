package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The tiny pretraining runs that the run tests spawn: a config on the demo's model shape, and the
 * trainer started as its own JVM (as {@code bin/trainer} would), output appended to a log.
 */
final class TinyRun {
  private TinyRun() {}

  /** 2 layers of 64, 4 heads (2 KV heads). */
  static final String SMALL =
      "hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4,"
          + " num_key_value_heads: 2";

  /** The repository root (the folder holding configs/demo). */
  static Path repo() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent())
      if (Files.isDirectory(p.resolve("configs/demo"))) return p;
    throw new IllegalStateException("configs/demo not found");
  }

  /** {@link #config(Path, String, Path, Path, Path, String)} on the demo tokenizer and text. */
  static Path config(Path out, String model, Path data, String keys) throws IOException {
    Path demo = repo().resolve("configs/demo");
    return config(
        out, model, demo.resolve("tokenizer.model"), demo.resolve("songci.txt"), data, keys);
  }

  /**
   * {@link #config(Path, String, Path, String)} of the {@link #SMALL} model: {@code steps} steps of
   * {@code batch} blocks a rank, then {@code keys}.
   */
  static Path small(Path out, Path data, int steps, int batch, String keys) throws IOException {
    return config(
        out,
        SMALL,
        data,
        "max_steps: %d\nper_device_train_batch_size: %d\n".formatted(steps, batch) + keys);
  }

  /**
   * Writes {@code <out>.yaml} beside {@code out}: the demo's model config shaped by {@code model}
   * (config_overrides), {@code text} tokenized by {@code tokenizer} into {@code data} with 5 % held
   * out, blocks of 32, output to {@code out}, then {@code keys} (YAML lines).
   */
  static Path config(Path out, String model, Path tokenizer, Path text, Path data, String keys)
      throws IOException {
    String yaml =
        """
        model_config: %s
        config_overrides: {%s}
        tokenizer: %s
        train_files: [%s]
        validation_split_percentage: 5
        data_dir: %s
        block_size: 32
        output_dir: %s
        """
                .formatted(
                    repo().resolve("configs/demo/tiny-llama.json"),
                    model,
                    tokenizer,
                    text,
                    data,
                    out)
            + keys;
    Path f = out.resolveSibling(out.getFileName() + ".yaml");
    Files.writeString(f, yaml);
    return f;
  }

  /** The trainer (dev.hanlin.cli.Main) with {@code args}, in a JVM of its own. */
  static Process start(Path log, String... args) throws IOException {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> cmd =
        new ArrayList<>(
            List.of(
                java,
                "--enable-native-access=ALL-UNNAMED",
                "-cp",
                System.getProperty("java.class.path"),
                "dev.hanlin.cli.Main"));
    cmd.addAll(List.of(args));
    return new ProcessBuilder(cmd)
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
        .start();
  }

  /** {@code --mode pretrain --config yaml}, in a JVM of its own. */
  static Process pretrain(Path yaml, Path log) throws IOException {
    return start(log, "--mode", "pretrain", "--config", yaml.toString());
  }

  /** Waits up to {@code minutes} for {@code p}; its exit code. */
  static int finish(Process p, Path log, int minutes) throws InterruptedException {
    assertTrue(p.waitFor(minutes, TimeUnit.MINUTES), "run did not finish; see " + log);
    return p.exitValue();
  }
}
