package dev.hanlin.train.source;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** A model initialized from {@code model_config}'s JSON with {@code config_overrides} applied. */
record FreshInit(Path modelConfig, Map<String, Object> overrides, long seed)
    implements ModelSource {
  @Override
  public LlamaModel load(Device device) throws IOException {
    return LlamaModel.init(config(), seed, DType.F32, device);
  }

  @Override
  public LlamaConfig config() throws IOException {
    ObjectNode n = (ObjectNode) new ObjectMapper().readTree(Files.readString(modelConfig));
    overrides.forEach((k, v) -> n.set(k, new ObjectMapper().valueToTree(v)));
    return LlamaConfig.fromJson(n);
  }
}
