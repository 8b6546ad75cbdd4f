package dev.hanlin.train.explicit;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.LoraAdapters;
import dev.hanlin.model.LoraConfig;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The tiny parity checkpoints of test-data/parity (as the train tests' TestData loads them). */
final class Models {
  private Models() {}

  /** test-data/parity/{@code name} in {@code dtype} with every weight needing gradients. */
  static LlamaModel trainable(String name, DType dtype) throws IOException {
    LlamaModel m = HfCheckpoint.load(dir().resolve(name), DType.F32, Device.CPU).withDtype(dtype);
    for (Tensor w : m.weights().values()) w.requiresGrad(true);
    return m;
  }

  /**
   * gqa with LoRA (dropout 0) on q, v, gate and down only (so the fused GEMMs mix adapted and plain
   * parts), B drawn non-zero so that A's gradients show; the base frozen.
   */
  static LlamaModel withLora() throws IOException {
    return withLora(0.0, List.of("q_proj", "v_proj", "gate_proj", "down_proj"));
  }

  /**
   * gqa with LoRA of {@code dropout} on {@code targets} (null: all seven), adapters as {@link
   * #withLora()} draws them (the same for every dropout), the base frozen.
   */
  static LlamaModel withLora(double dropout, List<String> targets) throws IOException {
    LlamaModel base = HfCheckpoint.load(dir().resolve("gqa"), DType.F32, Device.CPU);
    var lc = new LoraConfig(4, 8.0, dropout, targets, null, null, null);
    LoraAdapters ad = LoraAdapters.init(base, lc, 7);
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.noGrad()) {
      for (var e : ad.weights().entrySet())
        if (e.getKey().contains("lora_B"))
          e.getValue()
              .copy_(
                  Torch.randn(Generator.cpu(3), DType.F32, Device.CPU, e.getValue().shape())
                      .mul(0.1));
    }
    for (Tensor w : ad.weights().values()) w.requiresGrad(true);
    return base.withLora(ad);
  }

  /** What requires a gradient: the weights, or with LoRA the adapters. */
  static Map<String, Tensor> trained(LlamaModel m) {
    return m.lora() != null ? m.lora().weights() : m.weights();
  }

  /** The gradients of {@code params} as float32 copies, then cleared. */
  static Map<String, Tensor> takeGrads(Map<String, Tensor> params) {
    Map<String, Tensor> g = new LinkedHashMap<>();
    params.forEach(
        (k, v) -> {
          Tensor gr = v.grad();
          if (gr != null) g.put(k, gr.toFloat().copy().retain());
          v.clearGrad();
        });
    return g;
  }

  static Path dir() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      Path d = p.resolve("test-data").resolve("parity");
      if (Files.isDirectory(d)) return d;
    }
    throw new IllegalStateException("test-data/parity not found");
  }
}
