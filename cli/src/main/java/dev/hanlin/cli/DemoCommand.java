package dev.hanlin.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.model.GenerationOptions;
import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.TextGeneration;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The embedded default job that {@code java -jar trainer.jar} runs with no arguments: a tiny Llama
 * (config bundled in the jar) is initialized, saved as an HF folder, loaded back and asked to
 * continue a prompt. It needs no files and shows the whole model path working on this machine.
 */
@Command(
    name = "demo",
    mixinStandardHelpOptions = true,
    description = "Run the embedded default job (no files needed).")
final class DemoCommand implements Callable<Integer> {
  @Option(
      names = "--output",
      defaultValue = "output/demo-model",
      description = "Where the HF folder goes (default ${DEFAULT-VALUE}).")
  Path output;

  @Option(names = "--seed", defaultValue = "0", description = "Initialization seed.")
  long seed;

  @Override
  public Integer call() throws Exception {
    LlamaConfig config;
    try (InputStream in = DemoCommand.class.getResourceAsStream("/demo/config.json")) {
      config = LlamaConfig.fromJson(new ObjectMapper().readTree(in));
    }
    long t0 = System.nanoTime();
    LlamaModel model = LlamaModel.init(config, seed, DType.F32, Device.CPU);
    System.out.printf(
        "initialized a %,d-parameter Llama (%d layers, hidden %d, %d/%d heads) in %.1f s%n",
        config.parameterCount(),
        config.numHiddenLayers(),
        config.hiddenSize(),
        config.numAttentionHeads(),
        config.numKeyValueHeads(),
        (System.nanoTime() - t0) / 1e9);
    HfCheckpoint.save(model, output, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES);
    System.out.println("saved an HF model folder to " + output.toAbsolutePath());
    LlamaModel loaded = HfCheckpoint.load(output, DType.F32, Device.CPU);
    int[] prompt = {1, 15043, 3186};
    t0 = System.nanoTime();
    int[] out =
        TextGeneration.generate(loaded, prompt, GenerationOptions.greedy(16, config.eosTokenIds()));
    double s = (System.nanoTime() - t0) / 1e9;
    System.out.printf(
        "greedy continuation of %s: %s (%d tokens in %.2f s)%n",
        Arrays.toString(prompt),
        Arrays.toString(Arrays.copyOfRange(out, prompt.length, out.length)),
        out.length - prompt.length,
        s);
    System.out.println(
        "next: java -jar cli/target/trainer.jar --mode generate --model "
            + output
            + " --prompt-ids 1,15043,3186 --json");
    return 0;
  }
}
