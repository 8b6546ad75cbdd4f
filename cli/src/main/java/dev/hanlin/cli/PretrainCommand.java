package dev.hanlin.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.hanlin.train.PretrainConfig;
import dev.hanlin.train.TrainingRun;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Unmatched;

/**
 * {@code --mode pretrain}: causal-LM training from a YAML config. Without {@code --config} it runs
 * the embedded demo (configs/pretrain-demo.yaml with its bundled Chinese text and tokenizer).
 */
@Command(
    name = "pretrain",
    mixinStandardHelpOptions = true,
    description = "Pretrain (or continue pretraining) a Llama model from a YAML config.",
    footer = {
      "",
      "Llama2-Chinese's flags work too (--model_name_or_path, --train_files a b,"
          + " --per_device_train_batch_size 4, --deepspeed ds_config.json, ...): each sets its"
          + " config key, over --config and under --set; docs/llama2-chinese.md has the table."
    })
final class PretrainCommand implements Callable<Integer> {
  static final String DEMO = "pretrain-demo.yaml";
  static final List<String> DEMO_FILES =
      List.of("demo/tokenizer.model", "demo/songci.txt", "demo/tiny-llama.json");

  @Option(names = "--config", description = "YAML config (default: the embedded demo).")
  Path config;

  @Option(names = "--set", description = "Override a key: --set learning_rate=1e-4 (repeatable).")
  List<String> sets = List.of();

  @Option(names = "--overwrite-output-dir", description = "Start afresh instead of resuming.")
  boolean overwrite;

  @Option(names = "--resume-from", description = "Resume from this checkpoint folder.")
  Path resumeFrom;

  @Unmatched List<String> hfFlags = new ArrayList<>();

  @Override
  public Integer call() throws Exception {
    HfFlags.Parsed hf = HfFlags.parse(hfFlags);
    Map<String, Object> overrides = overrides(hf, sets, overwrite, resumeFrom);
    // the demo when nothing says what to train
    Path yaml = config != null || !hf.isEmpty() ? config : extractDemo(overrides);
    PretrainConfig cfg = PretrainConfig.load(yaml, overrides);
    if (cfg.sft() != null)
      throw new IllegalArgumentException("the config has an 'sft' section: run it with --mode sft");
    String resolved = new ObjectMapper(new YAMLFactory()).writeValueAsString(cfg);
    new TrainingRun(cfg, resolved, System.err).run();
    return 0;
  }

  /**
   * The keys set on the command line, in rising precedence: Llama2-Chinese's flags (their notes
   * printed), then this mode's own options.
   */
  static Map<String, Object> overrides(
      HfFlags.Parsed hf, List<String> sets, boolean overwrite, Path resumeFrom) throws IOException {
    hf.notes().forEach(n -> System.err.println("note: " + n));
    Map<String, Object> overrides = new LinkedHashMap<>(hf.keys());
    overrides.putAll(overrides(sets));
    if (overwrite) overrides.put("overwrite_output_dir", true);
    if (resumeFrom != null) overrides.put("resume_from_checkpoint", resumeFrom.toString());
    return overrides;
  }

  /** {@code key=value} pairs, values read as YAML scalars or flow collections. */
  static Map<String, Object> overrides(List<String> sets) throws IOException {
    ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
    Map<String, Object> out = new LinkedHashMap<>();
    for (String s : sets) {
      int eq = s.indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException("--set expects key=value, got '" + s + "'");
      String v = s.substring(eq + 1);
      out.put(s.substring(0, eq), v.isEmpty() ? null : yaml.readValue(v, Object.class));
    }
    return out;
  }

  /** Where the embedded demo runs: its own folder, not the one configs/pretrain-demo.yaml uses. */
  static final Path DEMO_OUTPUT = Path.of("output", "pretrain-demo");

  static Path extractDemo(Map<String, Object> overrides) throws IOException {
    return extractDemo(DEMO_OUTPUT, overrides);
  }

  /**
   * Copies the embedded demo (config, text, tokenizer) to {@code <output>/inputs} and points the
   * config there, so the demo runs from any directory; output and data go to {@code output} and
   * {@code output/data}. A file whose content is already there is not rewritten: a new mtime would
   * make prepare tokenize the text again on every run.
   */
  static Path extractDemo(Path output, Map<String, Object> overrides) throws IOException {
    Path inputs = output.resolve("inputs");
    Files.createDirectories(inputs.resolve("demo"));
    for (String f : DEMO_FILES) copyResource("/configs/" + f, inputs.resolve(f));
    Path yaml = inputs.resolve(DEMO);
    copyResource("/configs/" + DEMO, yaml);
    overrides.putIfAbsent("tokenizer", inputs.resolve("demo/tokenizer.model").toString());
    overrides.putIfAbsent("model_config", inputs.resolve("demo/tiny-llama.json").toString());
    overrides.putIfAbsent("train_files", List.of(inputs.resolve("demo/songci.txt").toString()));
    overrides.putIfAbsent("output_dir", output.toString());
    overrides.putIfAbsent("data_dir", output.resolve("data").toString());
    return yaml;
  }

  private static void copyResource(String name, Path to) throws IOException {
    byte[] content;
    try (InputStream in = PretrainCommand.class.getResourceAsStream(name)) {
      if (in == null) throw new IOException("the jar lacks " + name);
      content = in.readAllBytes();
    }
    if (Files.isRegularFile(to) && Arrays.equals(Files.readAllBytes(to), content)) return;
    Path tmp = to.resolveSibling(to.getFileName() + ".tmp");
    Files.write(tmp, content);
    Files.move(tmp, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }
}
