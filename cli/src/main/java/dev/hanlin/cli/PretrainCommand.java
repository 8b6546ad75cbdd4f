package dev.hanlin.cli;

import dev.hanlin.train.PretrainConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Unmatched;

/**
 * {@code --mode pretrain}: causal-LM training from a YAML config. Without {@code --config} it runs
 * the embedded demo (configs/pretrain-demo.yaml with its bundled Chinese text and tokenizer).
 */
@Command(
    name = "pretrain",
    mixinStandardHelpOptions = true,
    resourceBundle = "dev.hanlin.cli.RunOptions",
    description = "Pretrain (or continue pretraining) a Llama model from a YAML config.",
    footer = {
      "",
      "Llama2-Chinese's flags work too (--model_name_or_path, --train_files a b,"
          + " --per_device_train_batch_size 4, --deepspeed ds_config.json, ...): each sets its"
          + " config key, over --config and under --set; docs/llama2-chinese.md has the table."
    })
final class PretrainCommand implements Callable<Integer> {
  @Mixin RunOptions run;
  @Unmatched List<String> hfFlags = new ArrayList<>();

  @Override
  public Integer call() throws Exception {
    HfFlags.Parsed hf = HfFlags.parse(hfFlags);
    Map<String, Object> overrides = run.overrides(hf);
    // the demo when nothing says what to train
    Path yaml = run.config != null || !hf.isEmpty() ? run.config : EmbeddedDemo.extract(overrides);
    PretrainConfig cfg = PretrainConfig.load(yaml, overrides);
    if (cfg.sft() != null)
      throw new IllegalArgumentException("the config has an 'sft' section: run it with --mode sft");
    RunOptions.train(cfg);
    return 0;
  }
}
