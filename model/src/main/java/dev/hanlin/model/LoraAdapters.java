package dev.hanlin.model;

import dev.hanlin.config.ConfigException;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The trainable part of a LoRA model: A and B of every targeted linear layer, under HF-style names
 * ({@code model.layers.0.self_attn.q_proj.lora_A.weight}), plus full copies of the modules to save
 * ({@code model.embed_tokens.weight}, {@code lm_head.weight}). {@link PeftAdapter} adds PEFT's
 * {@code base_model.model.} prefix on disk.
 */
public final class LoraAdapters {
  private final LoraConfig config;
  private final Map<String, Tensor> weights;

  private LoraAdapters(LoraConfig config, Map<String, Tensor> weights) {
    this.config = config;
    this.weights = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(weights));
  }

  public LoraConfig config() {
    return config;
  }

  /** Every trainable tensor under its name, in a fixed order. */
  public Map<String, Tensor> weights() {
    return weights;
  }

  /** The HF module path of a target in layer {@code i}: {@code model.layers.i.self_attn.q_proj}. */
  static String modulePath(int layer, String target) {
    String block = target.endsWith("_proj") && target.length() == 6 ? "self_attn" : "mlp";
    return "model.layers." + layer + "." + block + "." + target;
  }

  /** Names and shapes the adapters of {@code lc} have on a model of config {@code c}. */
  public static Map<String, long[]> expectedShapes(LlamaConfig c, LoraConfig lc) {
    Map<String, long[]> base = LlamaModel.expectedShapes(c);
    Map<String, long[]> s = new LinkedHashMap<>();
    for (int i = 0; i < c.numHiddenLayers(); i++) {
      for (String t : LoraConfig.ALL_TARGETS) {
        if (!lc.targetModules().contains(t)) continue;
        String p = modulePath(i, t);
        long[] w = base.get(p + ".weight"); // (out, in)
        s.put(p + ".lora_A.weight", new long[] {lc.r(), w[1]});
        s.put(p + ".lora_B.weight", new long[] {w[0], lc.r()});
      }
    }
    for (String n : lc.savedWeightNames()) {
      if (n.equals("lm_head.weight") && c.tieWordEmbeddings())
        throw new ConfigException(
            "modules_to_save lm_head: the model ties lm_head to embed_tokens; save embed_tokens");
      s.put(n, base.get(n));
    }
    return s;
  }

  /**
   * Fresh adapters as PEFT initializes them: A uniform in ±1/sqrt(in) (kaiming-uniform with a =
   * √5), B zero, so the model starts equal to the base; modules to save start as fp32 copies of the
   * base's. Adapters are fp32 on the base's device.
   */
  public static LoraAdapters init(LlamaModel base, LoraConfig lc, long seed) {
    Generator gen = Generator.cpu(seed);
    Map<String, Tensor> w = new LinkedHashMap<>();
    Device dev = base.device();
    for (var e : expectedShapes(base.config(), lc).entrySet()) {
      try (Scope s = Scope.open()) {
        String n = e.getKey();
        long[] shape = e.getValue();
        Tensor t;
        if (n.endsWith(".lora_A.weight")) {
          double bound = 1 / Math.sqrt(shape[1]);
          t = Torch.empty(DType.F32, Device.CPU, shape).uniform_(-bound, bound, gen).to(dev);
        } else if (n.endsWith(".lora_B.weight")) t = Torch.zeros(DType.F32, dev, shape);
        else t = base.weights().get(n).detach().to(dev, DType.F32, false).copy();
        w.put(n, t.retain());
      }
    }
    return new LoraAdapters(lc, w);
  }

  /** Adapters over given tensors, checked against the shapes the configs imply. */
  public static LoraAdapters fromWeights(LlamaConfig c, LoraConfig lc, Map<String, Tensor> w) {
    return new LoraAdapters(lc, WeightCheck.match("adapter weights", expectedShapes(c, lc), w));
  }

  /** The adapters of one block's attention or MLP, keyed by target ({@code q_proj}, ...). */
  Map<String, LoraLinear> modules(int layer, boolean attention) {
    Map<String, LoraLinear> m = new LinkedHashMap<>();
    for (String t : config.targetModules()) {
      String p = modulePath(layer, t);
      if (p.contains(".self_attn.") != attention) continue;
      m.put(
          t,
          new LoraLinear(
              weights.get(p + ".lora_A.weight"),
              weights.get(p + ".lora_B.weight"),
              config.scaling(),
              config.dropout()));
    }
    return m;
  }

  /** The base model with these adapters applied (and modules to save replacing the base's). */
  public LlamaModel applyTo(LlamaModel base) {
    return base.withLora(this);
  }

  /**
   * A plain model whose weights are {@code W + scaling · B A} for every adapted layer and the saved
   * modules in place of the base's, in the base's dtype: what PEFT's {@code merge_and_unload}
   * gives.
   */
  public LlamaModel merge(LlamaModel base) {
    if (!base.quantizedWeights().isEmpty())
      throw new ConfigException(
          "cannot merge LoRA into a quantized base (load_in_bits): the merged weights would carry"
              + " the quantization error; merge into the full-precision base (load it without"
              + " load_in_bits, as merge-lora does)");
    Map<String, Tensor> w = new LinkedHashMap<>(base.weights());
    try (Grad.Guard g = Grad.noGrad()) {
      for (String n : config.savedWeightNames())
        w.put(n, weights.get(n).detach().to(base.dtype()).contiguous().retain());
      for (int i = 0; i < base.config().numHiddenLayers(); i++) {
        for (boolean attn : new boolean[] {true, false}) {
          for (var e : modules(i, attn).entrySet()) {
            String name = modulePath(i, e.getKey()) + ".weight";
            try (Scope s = Scope.open()) {
              Tensor merged = base.weights().get(name).toFloat().add(e.getValue().deltaWeight());
              w.put(name, merged.to(base.dtype()).contiguous().retain());
            }
          }
        }
      }
    }
    return LlamaModel.fromWeights(base.config(), w);
  }
}
