package dev.hanlin.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.hanlin.train.PretrainConfig;
import dev.hanlin.train.TrainingRun;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Unmatched;

/**
 * {@code --mode sft}: instruction tuning, full-parameter or LoRA (a {@code lora:} section), on the
 * pretraining engine (checkpoints, exact resume, eval over response tokens, metrics, export).
 */
@Command(
    name = "sft",
    mixinStandardHelpOptions = true,
    description = "Instruction-tune a Llama model (full or LoRA) from a YAML config.",
    footer = {
      "",
      "Llama2-Chinese's flags work too (--model_name_or_path, --train_files a.csv,"
          + " --lora_r 8 --target_modules q_proj,v_proj, --deepspeed ds_config.json, ...): each"
          + " sets its config key, over --config and under --set; docs/llama2-chinese.md has the"
          + " table."
    })
final class SftCommand implements Callable<Integer> {
  @Option(
      names = "--config",
      description =
          "YAML config (see configs/sft-example.yaml); optional when flags give the keys.")
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
    if (config == null && hf.isEmpty())
      throw new IllegalArgumentException(
          "--mode sft needs --config X.yaml (see configs/sft-example.yaml) or Llama2-Chinese's"
              + " flags (--model_name_or_path, --train_files, --output_dir, ...)");
    Map<String, Object> overrides = PretrainCommand.overrides(hf, sets, overwrite, resumeFrom);
    // an 'sft' section, the file's if it has one (a mapping merges into it), else the defaults
    overrides.putIfAbsent("sft", new LinkedHashMap<>());
    PretrainConfig cfg = PretrainConfig.load(config, overrides);
    String resolved = new ObjectMapper(new YAMLFactory()).writeValueAsString(cfg);
    new TrainingRun(cfg, resolved, System.err).run();
    return 0;
  }
}
