package dev.hanlin.cli;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.PeftAdapter;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * The options that pick the model to generate with ({@code generate}, {@code chat}, {@code serve})
 * and its loading: the one place a model folder, an adapter and a tokenizer are put together for
 * inference.
 */
final class ServingModel {
  @Option(
      names = "--model",
      required = true,
      description = "HF model folder (config.json, safetensors, tokenizer).")
  Path model;

  @Option(names = "--adapter", description = "A PEFT LoRA adapter folder to apply to the model.")
  Path adapter;

  @Option(
      names = "--tokenizer",
      description = "tokenizer.model / tokenizer.json (default: the adapter's, else the model's).")
  Path tokenizer;

  @Option(
      names = "--device",
      defaultValue = "auto",
      description = "cpu, cuda, cuda:N or auto (default).")
  String device;

  @Option(
      names = "--dtype",
      description = "float32 or bfloat16 (default: float32 on CPU, bfloat16 on CUDA).")
  String dtype;

  /** The model with its adapter applied, if any: the one place an adapter is loaded for serving. */
  LlamaModel load() throws IOException {
    Device dev = Device.parse(device);
    DType dt = dtype != null ? DType.fromHf(dtype) : dev.isCuda() ? DType.BF16 : DType.F32;
    ModelFolders.requireModel(model);
    LlamaModel m = HfCheckpoint.load(model, adapter != null ? DType.F32 : dt, dev);
    if (adapter != null) { // merged in fp32, as merge-lora and generate do, then cast
      m = PeftAdapter.loadOnto(adapter, m, dev);
      m = m.lora().merge(m).withDtype(dt);
    }
    return m;
  }

  /** --tokenizer, else the adapter's (an extended vocabulary travels with it), else the model's. */
  Tokenizer tokenizer() {
    return tokenizer(true);
  }

  /**
   * As {@link #tokenizer()}, or null when none is given, none is in the folders and {@code
   * required} is false (generate from --prompt-ids).
   */
  Tokenizer tokenizer(boolean required) {
    ModelFolders.requireModel(model);
    if (tokenizer != null) return Tokenizer.load(tokenizer);
    Path p = Tokenizer.isIn(adapter) ? adapter : model;
    if (Tokenizer.isIn(p)) return Tokenizer.load(p);
    if (!required) return null;
    throw new IllegalArgumentException(
        model
            + " has no tokenizer.model or tokenizer.json: pass --tokenizer PATH or use --prompt-ids");
  }
}
