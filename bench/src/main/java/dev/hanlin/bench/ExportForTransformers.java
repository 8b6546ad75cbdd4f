package dev.hanlin.bench;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import dev.hanlin.torch.safetensors.SafetensorsWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The other direction of parity: for each test-data/parity config, a model initialized by Hanlin
 * (its own seed, not transformers') is saved as an HF folder with Hanlin's logits for the golden
 * ids. test-data/parity/check_hanlin_export.py then loads each folder with transformers and
 * compares. Usage: {@code ExportForTransformers PARITY_DIR OUT_DIR [device]}.
 */
public final class ExportForTransformers {
  public static void main(String[] args) throws Exception {
    Path parity = Path.of(args[0]), out = Path.of(args[1]);
    Device dev = Device.parse(args.length > 2 ? args[2] : "cpu");
    for (String name :
        new String[] {"mha", "gqa", "tied", "llama3", "linear", "dynamic", "headdim_bias"}) {
      LlamaConfig c = LlamaConfig.read(parity.resolve(name).resolve("config.json"));
      LlamaModel m = LlamaModel.init(c, 2026, DType.F32, dev);
      Path dir = out.resolve(name);
      HfCheckpoint.save(m, dir, 200_000); // small shards, so transformers reads an index too
      try (SafetensorsFile g =
              SafetensorsFile.open(parity.resolve(name).resolve("goldens.safetensors"));
          Scope s = Scope.open();
          Grad.Guard ng = Grad.inference()) {
        Tensor ids = g.load("input_ids").to(dev);
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("input_ids", ids);
        t.put("logits", m.forward(ids, null));
        SafetensorsWriter.write(dir.resolve("hanlin_logits.safetensors"), t);
      }
      System.out.println("exported " + dir);
    }
  }
}
