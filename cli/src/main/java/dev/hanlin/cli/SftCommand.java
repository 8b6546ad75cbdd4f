package dev.hanlin.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.hanlin.train.PretrainConfig;
import dev.hanlin.train.Trainer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code --mode sft}: instruction tuning, full-parameter or LoRA (a {@code lora:} section), on the
 * pretraining engine (checkpoints, exact resume, eval over response tokens, metrics, export).
 */
@Command(
    name = "sft",
    mixinStandardHelpOptions = true,
    description = "Instruction-tune a Llama model (full or LoRA) from a YAML config.")
final class SftCommand implements Callable<Integer> {
  @Option(
      names = "--config",
      required = true,
      description = "YAML config (see configs/sft-example.yaml).")
  Path config;

  @Option(names = "--set", description = "Override a key: --set learning_rate=1e-4 (repeatable).")
  List<String> sets = List.of();

  @Option(names = "--overwrite-output-dir", description = "Start afresh instead of resuming.")
  boolean overwrite;

  @Option(names = "--resume-from", description = "Resume from this checkpoint folder.")
  Path resumeFrom;

  @Override
  public Integer call() throws Exception {
    Map<String, Object> overrides = PretrainCommand.overrides(sets);
    if (overwrite) overrides.put("overwrite_output_dir", true);
    if (resumeFrom != null) overrides.put("resume_from_checkpoint", resumeFrom.toString());
    PretrainConfig cfg = PretrainConfig.load(config, overrides);
    if (cfg.sft() == null) { // the defaults: prompt field input, response field target
      overrides.put("sft", new LinkedHashMap<>());
      cfg = PretrainConfig.load(config, overrides);
    }
    String resolved = new ObjectMapper(new YAMLFactory()).writeValueAsString(cfg);
    new Trainer(cfg, resolved, System.err).run();
    return 0;
  }
}
