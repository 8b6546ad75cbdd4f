package dev.hanlin.cli;

import dev.hanlin.train.PretrainConfig;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Unmatched;

/**
 * {@code --mode sft}: instruction tuning, full-parameter or LoRA (a {@code lora:} section), on the
 * pretraining engine (checkpoints, exact resume, eval over response tokens, metrics, export).
 */
@Command(
    name = "sft",
    mixinStandardHelpOptions = true,
    resourceBundle = "dev.hanlin.cli.RunOptions",
    description = "Instruction-tune a Llama model (full or LoRA) from a YAML config.",
    footer = {
      "",
      "Llama2-Chinese's flags work too (--model_name_or_path, --train_files a.csv,"
          + " --lora_r 8 --target_modules q_proj,v_proj, --deepspeed ds_config.json, ...): each"
          + " sets its config key, over --config and under --set; docs/llama2-chinese.md has the"
          + " table."
    })
final class SftCommand implements Callable<Integer> {
  @Mixin RunOptions run;
  @Unmatched List<String> hfFlags = new ArrayList<>();

  @Override
  public Integer call() throws Exception {
    HfFlags.Parsed hf = HfFlags.parse(hfFlags);
    if (run.config == null && hf.isEmpty())
      throw new IllegalArgumentException(
          "--mode sft needs --config X.yaml (see configs/sft-example.yaml) or Llama2-Chinese's"
              + " flags (--model_name_or_path, --train_files, --output_dir, ...)");
    Map<String, Object> overrides = run.overrides(hf);
    // an 'sft' section, the file's if it has one (a mapping merges into it), else the defaults
    overrides.putIfAbsent("sft", new LinkedHashMap<>());
    RunOptions.train(PretrainConfig.load(run.config, overrides));
    return 0;
  }
}
