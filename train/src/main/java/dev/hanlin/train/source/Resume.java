package dev.hanlin.train.source;

import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.train.Checkpoints;
import java.io.IOException;

/** The full weights of the checkpoint being resumed (already loaded, float32). */
record Resume(Checkpoints.Loaded ck) implements ModelSource {
  @Override
  public LlamaModel load(Device device) throws IOException {
    return LlamaModel.fromWeights(config().withDtype(DType.F32), ck.weights());
  }

  @Override
  public LlamaConfig config() throws IOException {
    return LlamaConfig.read(ck.dir().resolve("config.json"));
  }
}
