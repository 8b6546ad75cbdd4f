package dev.hanlin.cli;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.PeftAdapter;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The options that pick the model to generate with ({@code generate}, {@code chat}, {@code serve})
 * and its loading: the one place a model folder, an adapter and a tokenizer are put together for
 * inference.
 */
final class ServingModel {
  @Mixin ModelOptions names;
  @Mixin DeviceOptions device;

  @Option(
      names = "--dtype",
      description = "float32 or bfloat16 (default: float32 on CPU, bfloat16 on CUDA).")
  String dtype;

  /** The model's HF folder. */
  Path folder() {
    return names.model;
  }

  /** The model with its adapter applied, if any: the one place an adapter is loaded for serving. */
  LlamaModel load() throws IOException {
    Device dev = device.device();
    DType dt = dtype != null ? DType.fromHf(dtype) : dev.isCuda() ? DType.BF16 : DType.F32;
    Path model = names.model, adapter = names.adapter;
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
    ModelFolders.requireModel(names.model);
    Tokenizer t = names.tokenizerIfAny();
    if (t != null || !required) return t;
    throw new IllegalArgumentException(
        names.model
            + " has no tokenizer.model or tokenizer.json: pass --tokenizer PATH or use --prompt-ids");
  }
}
