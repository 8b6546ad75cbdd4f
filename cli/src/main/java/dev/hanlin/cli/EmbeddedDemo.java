package dev.hanlin.cli;

import dev.hanlin.torch.io.AtomicFiles;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The pretraining demo inside trainer.jar (configs/pretrain-demo.yaml with its bundled Chinese
 * text, tokenizer and tiny model config): what {@code --mode pretrain} runs when nothing says what
 * to train.
 */
final class EmbeddedDemo {
  private EmbeddedDemo() {}

  static final String CONFIG = "pretrain-demo.yaml";
  static final List<String> FILES =
      List.of("demo/tokenizer.model", "demo/songci.txt", "demo/tiny-llama.json");

  /** Where the embedded demo runs: its own folder, not the one configs/pretrain-demo.yaml uses. */
  static final Path OUTPUT = Path.of("output", "pretrain-demo");

  static Path extract(Map<String, Object> overrides) throws IOException {
    return extract(OUTPUT, overrides);
  }

  /**
   * Copies the embedded demo (config, text, tokenizer) to {@code <output>/inputs} and points the
   * config there, so the demo runs from any directory; output and data go to {@code output} and
   * {@code output/data}. A file whose content is already there is not rewritten: a new mtime would
   * make prepare tokenize the text again on every run.
   */
  static Path extract(Path output, Map<String, Object> overrides) throws IOException {
    Path inputs = output.resolve("inputs");
    Files.createDirectories(inputs.resolve("demo"));
    for (String f : FILES) copyResource("/configs/" + f, inputs.resolve(f));
    Path yaml = inputs.resolve(CONFIG);
    copyResource("/configs/" + CONFIG, yaml);
    overrides.putIfAbsent("tokenizer", inputs.resolve("demo/tokenizer.model").toString());
    overrides.putIfAbsent("model_config", inputs.resolve("demo/tiny-llama.json").toString());
    overrides.putIfAbsent("train_files", List.of(inputs.resolve("demo/songci.txt").toString()));
    overrides.putIfAbsent("output_dir", output.toString());
    overrides.putIfAbsent("data_dir", output.resolve("data").toString());
    return yaml;
  }

  private static void copyResource(String name, Path to) throws IOException {
    byte[] content;
    try (InputStream in = EmbeddedDemo.class.getResourceAsStream(name)) {
      if (in == null) throw new IOException("the jar lacks " + name);
      content = in.readAllBytes();
    }
    if (Files.isRegularFile(to) && Arrays.equals(Files.readAllBytes(to), content)) return;
    AtomicFiles.write(to, content);
  }
}
