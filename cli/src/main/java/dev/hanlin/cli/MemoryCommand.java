package dev.hanlin.cli;

import dev.hanlin.train.MemoryReport;
import dev.hanlin.train.PretrainConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Unmatched;

/**
 * {@code --mode memory}: what one GPU of a training config would hold (weights, gradients, masters,
 * AdamW state, activations, communication buffers), from the model's shape alone, so a user sees
 * whether a run fits before starting it.
 */
@Command(
    name = "memory",
    mixinStandardHelpOptions = true,
    resourceBundle = "dev.hanlin.cli.RunOptions",
    description =
        "Print the per-GPU memory plan of a pretrain or sft config (every zero stage, with and"
            + " without offload) without training.")
final class MemoryCommand implements Callable<Integer> {
  @Mixin RunOptions run;

  @Option(
      names = "--world",
      description = "Processes (GPUs) to plan for (default: WORLD_SIZE, else 1).")
  Integer world;

  @Unmatched List<String> hfFlags = new ArrayList<>();

  @Override
  public Integer call() throws Exception {
    PretrainConfig cfg = PretrainConfig.load(run.config, run.overrides(HfFlags.parse(hfFlags)));
    int w =
        world != null ? world : Integer.parseInt(System.getenv().getOrDefault("WORLD_SIZE", "1"));
    System.out.print(MemoryReport.of(cfg, w));
    return 0;
  }
}
