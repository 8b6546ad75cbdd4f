package dev.hanlin.train.source;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.train.FiniteWeights;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * An HF model folder ({@code model_name_or_path}): config.json and safetensors weights; with {@code
 * loadInBits} 4 or 8 ({@code lora.load_in_bits}) the blocks' linear weights are quantized as they
 * are read, one tensor at a time, so the whole model never sits in memory at full precision.
 */
record HfFolder(Path folder, int loadInBits) implements ModelSource {
  @Override
  public LlamaModel load(Device device) throws IOException {
    require();
    LlamaModel m = HfCheckpoint.load(folder, DType.F32, device, loadInBits);
    FiniteWeights.require(m.weights(), "model folder " + folder);
    return m;
  }

  @Override
  public LlamaConfig config() throws IOException {
    require();
    return LlamaConfig.read(folder.resolve("config.json"));
  }

  /**
   * Fails with a message that says what to do when the model folder is missing: the SFT example
   * starts from the pretraining demo's output, which exists only once the demo has run.
   */
  void require() {
    if (Files.isDirectory(folder) && Files.exists(folder.resolve("config.json"))) return;
    String what =
        Files.isDirectory(folder)
            ? "model_name_or_path "
                + folder
                + " has no config.json (is it a finished run's output?)"
            : "model_name_or_path " + folder + " does not exist";
    if (folder.normalize().endsWith(Path.of("output", "pretrain-demo")))
      what +=
          "; it is the pretraining demo's model: run the demo to the end first (java -jar"
              + " cli/target/trainer.jar --mode pretrain)";
    throw new IllegalArgumentException(what);
  }

  /** Refuses an output folder that is this model folder: the run would overwrite its start. */
  void requireNotOutput(Path out) {
    if (out.toAbsolutePath().normalize().equals(folder.toAbsolutePath().normalize()))
      throw new IllegalArgumentException(
          "output_dir is the model folder model_name_or_path ("
              + out
              + "): the run would overwrite the model it starts from; choose another output_dir");
  }
}
