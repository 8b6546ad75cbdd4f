package dev.hanlin.bench;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import java.nio.file.Path;

/** The parity goldens checked on a GPU in fp32: prints max |Δlogits| per case. */
public final class GpuParityCheck {
  public static void main(String[] args) throws Exception {
    Path parity = Path.of(args[0]);
    Device dev = Device.parse(args.length > 1 ? args[1] : "cuda");
    for (String name :
        new String[] {"mha", "gqa", "tied", "llama3", "linear", "dynamic", "headdim_bias"}) {
      Path dir = parity.resolve(name);
      LlamaModel m = HfCheckpoint.load(dir, DType.F32, dev);
      try (SafetensorsFile g = SafetensorsFile.open(dir.resolve("goldens.safetensors"));
          Scope s = Scope.open();
          Grad.Guard ng = Grad.inference()) {
        Tensor ids = g.load("input_ids").to(dev);
        Tensor expected = g.load("logits").to(dev);
        double d = m.forward(ids, null).sub(expected).abs().max().item();
        System.out.printf("RESULT gpu-parity %s device=%s max_abs_dlogits=%.3g%n", name, dev, d);
      }
    }
  }
}
