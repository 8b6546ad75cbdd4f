package dev.hanlin.model;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code LlamaForCausalLM}: token embedding, decoder layers, final norm and the language-model
 * head. Its weights are a map under HF's parameter names ({@code
 * model.layers.0.self_attn.q_proj.weight}, ...), so checkpoints go in and out of transformers
 * without renaming. The model knows nothing of training or parallelism. Legend: B = batch, T =
 * tokens, C = hidden size, V = vocabulary.
 */
public final class LlamaModel {
  private final LlamaConfig config;
  private final Map<String, Tensor> weights;
  private final Tensor embed;
  private final List<TransformerBlock> layers;
  private final RmsNorm norm;
  private final Tensor lmHead;
  private final Rotary rotary;

  private final LoraAdapters lora;

  private LlamaModel(LlamaConfig config, Map<String, Tensor> weights) {
    this(config, weights, null);
  }

  private LlamaModel(LlamaConfig config, Map<String, Tensor> weights, LoraAdapters lora) {
    this.config = config;
    this.lora = lora;
    this.weights = Collections.unmodifiableMap(new LinkedHashMap<>(weights));
    this.embed = weights.get("model.embed_tokens.weight");
    this.lmHead = config.tieWordEmbeddings() ? embed : weights.get("lm_head.weight");
    this.norm = new RmsNorm(weights.get("model.norm.weight"), config.rmsNormEps());
    List<TransformerBlock> ls = new ArrayList<>();
    for (int i = 0; i < config.numHiddenLayers(); i++) {
      String p = "model.layers." + i + ".";
      String a = p + "self_attn.", m = p + "mlp.";
      ls.add(
          new TransformerBlock(
              i,
              new RmsNorm(weights.get(p + "input_layernorm.weight"), config.rmsNormEps()),
              new Attention(
                  config,
                  weights.get(a + "q_proj.weight"),
                  weights.get(a + "q_proj.bias"),
                  weights.get(a + "k_proj.weight"),
                  weights.get(a + "k_proj.bias"),
                  weights.get(a + "v_proj.weight"),
                  weights.get(a + "v_proj.bias"),
                  weights.get(a + "o_proj.weight"),
                  weights.get(a + "o_proj.bias"),
                  lora == null ? Map.of() : lora.modules(i, true)),
              new RmsNorm(weights.get(p + "post_attention_layernorm.weight"), config.rmsNormEps()),
              new FeedForward(
                  weights.get(m + "gate_proj.weight"),
                  weights.get(m + "gate_proj.bias"),
                  weights.get(m + "up_proj.weight"),
                  weights.get(m + "up_proj.bias"),
                  weights.get(m + "down_proj.weight"),
                  weights.get(m + "down_proj.bias"),
                  lora == null ? Map.of() : lora.modules(i, false))));
    }
    this.layers = List.copyOf(ls);
    this.rotary = new Rotary(config);
  }

  /** Every parameter's HF name and shape, in HF's order. */
  public static Map<String, long[]> expectedShapes(LlamaConfig c) {
    Map<String, long[]> s = new LinkedHashMap<>();
    long h = c.hiddenSize(), q = (long) c.numAttentionHeads() * c.headDim();
    long kv = (long) c.numKeyValueHeads() * c.headDim(), in = c.intermediateSize();
    s.put("model.embed_tokens.weight", new long[] {c.vocabSize(), h});
    for (int i = 0; i < c.numHiddenLayers(); i++) {
      String p = "model.layers." + i + ".";
      linear(s, p + "self_attn.q_proj", q, h, c.attentionBias());
      linear(s, p + "self_attn.k_proj", kv, h, c.attentionBias());
      linear(s, p + "self_attn.v_proj", kv, h, c.attentionBias());
      linear(s, p + "self_attn.o_proj", h, q, c.attentionBias());
      linear(s, p + "mlp.gate_proj", in, h, c.mlpBias());
      linear(s, p + "mlp.up_proj", in, h, c.mlpBias());
      linear(s, p + "mlp.down_proj", h, in, c.mlpBias());
      s.put(p + "input_layernorm.weight", new long[] {h});
      s.put(p + "post_attention_layernorm.weight", new long[] {h});
    }
    s.put("model.norm.weight", new long[] {h});
    if (!c.tieWordEmbeddings()) s.put("lm_head.weight", new long[] {c.vocabSize(), h});
    return s;
  }

  private static void linear(Map<String, long[]> s, String name, long out, long in, boolean bias) {
    s.put(name + ".weight", new long[] {out, in});
    if (bias) s.put(name + ".bias", new long[] {out});
  }

  /**
   * A model over the given weights, checked against the config: every expected name present with
   * its shape, nothing unexpected. The tensors are used as they are (not copied).
   */
  public static LlamaModel fromWeights(LlamaConfig c, Map<String, Tensor> w) {
    return new LlamaModel(c, WeightCheck.match("weights", expectedShapes(c), w));
  }

  /**
   * HF-style random initialization: linear and embedding weights from N(0, initializer_range²),
   * biases zero, norms one, the padding row (if any) zero. Deterministic for a seed.
   */
  public static LlamaModel init(LlamaConfig c, long seed, DType dtype, Device device) {
    Generator gen = Generator.cpu(seed);
    Map<String, Tensor> w = new LinkedHashMap<>();
    for (var e : expectedShapes(c).entrySet()) {
      try (Scope s = Scope.open()) {
        String name = e.getKey();
        long[] shape = e.getValue();
        Tensor t;
        if (name.endsWith("norm.weight")) t = Torch.ones(DType.F32, Device.CPU, shape);
        else if (name.endsWith(".bias")) t = Torch.zeros(DType.F32, Device.CPU, shape);
        else t = Torch.empty(DType.F32, Device.CPU, shape).normal_(0, c.initializerRange(), gen);
        if (name.equals("model.embed_tokens.weight") && c.padTokenId() != null)
          t.select(0, c.padTokenId()).zero_();
        w.put(name, t.to(device, dtype, false).retain());
      }
    }
    return new LlamaModel(c, w);
  }

  public LlamaConfig config() {
    return config;
  }

  /**
   * This model with LoRA adapters beside its linear layers, sharing its weights; the adapters'
   * modules to save replace the corresponding weights.
   */
  public LlamaModel withLora(LoraAdapters adapters) {
    Map<String, Tensor> w = new LinkedHashMap<>(weights);
    for (String n : adapters.config().savedWeightNames()) w.put(n, adapters.weights().get(n));
    return new LlamaModel(config, w, adapters);
  }

  /** The LoRA adapters applied to this model, or null. */
  public LoraAdapters lora() {
    return lora;
  }

  /** The weights under HF names, in HF order (the tied lm_head is not listed). */
  public Map<String, Tensor> weights() {
    return weights;
  }

  public DType dtype() {
    return embed.dtype();
  }

  public Device device() {
    return embed.device();
  }

  /**
   * Logits (B, T, V) for token ids (B, T). With a cache, the ids continue the cached sequence and
   * their keys and values are appended to it.
   */
  public Tensor forward(Tensor ids, KvCache cache) {
    long t = ids.size(1);
    long start = cache == null ? 0 : cache.length();
    Tensor x = Torch.embedding(embed, ids); // (B, T, C)
    Tensor[] cs = rotary.cosSin(start, t, x.dtype(), x.device()); // (T, D) each
    for (TransformerBlock layer : layers) {
      // A scope per layer frees the layer's temporaries now rather than at the end of the step;
      // autograd keeps what backward needs. Without it every activation lives until backward ends.
      try (Scope s = Scope.open()) {
        x = s.keep(layer.forward(x, cs[0], cs[1], cache));
      }
    }
    if (cache != null) cache.advance(t);
    return Torch.linear(norm.forward(x), lmHead, null); // (B, T, V)
  }

  /**
   * Logits (B, T, V) for rows that pack several samples: {@code positions} (B, T) restart at 0 at
   * each sample, and {@code segments} (B, T) number the samples of a row, so that a token attends
   * only to earlier tokens of its own sample. Each sample's logits equal those of the sample alone.
   */
  public Tensor forwardPacked(Tensor ids, Tensor positions, Tensor segments) {
    long t = ids.size(1);
    Tensor x = Torch.embedding(embed, ids); // (B, T, C)
    Tensor[] cs = rotary.cosSin(0, t, x.dtype(), x.device()); // (T, D) each
    Tensor cos = Torch.embedding(cs[0], positions).unsqueeze(1); // (B, 1, T, D)
    Tensor sin = Torch.embedding(cs[1], positions).unsqueeze(1);
    // same sample and not later: (B, 1, T, T), true where a query may attend a key
    Tensor mask =
        segments
            .unsqueeze(2)
            .eq(segments.unsqueeze(1))
            .and(positions.unsqueeze(2).ge(positions.unsqueeze(1)))
            .unsqueeze(1);
    for (TransformerBlock layer : layers) {
      try (Scope s = Scope.open()) {
        x = s.keep(layer.forward(x, cos, sin, null, mask));
      }
    }
    return Torch.linear(norm.forward(x), lmHead, null); // (B, T, V)
  }

  /**
   * Forward and backward with activation checkpointing (recompute per block): the forward keeps
   * only each block's input, not its activations; the backward recomputes one block at a time and
   * backpropagates through it. Gradients equal those of {@code loss(forward(ids)).backward()}; peak
   * activation memory drops from all blocks to one block. Returns the value of the loss tensor that
   * {@code lossOfLogits} makes from the logits (B, T, V). Call it inside the caller's step scope
   * (and autocast, if any); it needs no KV cache.
   */
  public double forwardBackwardCheckpointed(
      Tensor ids, java.util.function.Function<Tensor, Tensor> lossOfLogits) {
    long t = ids.size(1);
    Tensor x0 = Torch.embedding(embed, ids); // (B, T, C), its small graph kept for the end
    Tensor[] cs = rotary.cosSin(0, t, x0.dtype(), x0.device());
    Tensor[] inputs = new Tensor[layers.size() + 1]; // block inputs, without graphs
    inputs[0] = x0.detach();
    try (var g = dev.hanlin.torch.Grad.noGrad()) {
      for (int i = 0; i < layers.size(); i++)
        inputs[i + 1] = layers.get(i).forward(inputs[i], cs[0], cs[1], null);
    }
    double lossValue;
    Tensor grad;
    try (Scope s = Scope.open()) {
      Tensor xl = inputs[layers.size()].detach().requiresGrad(true);
      Tensor loss = lossOfLogits.apply(Torch.linear(norm.forward(xl), lmHead, null));
      loss.backward();
      lossValue = loss.item();
      grad = s.keep(xl.grad());
    }
    for (int i = layers.size() - 1; i >= 0; i--) {
      try (Scope s = Scope.open()) {
        Tensor xi = inputs[i].detach().requiresGrad(true);
        layers.get(i).forward(xi, cs[0], cs[1], null).backward(grad);
        grad = s.keep(xi.grad());
      }
    }
    x0.backward(grad);
    return lossValue;
  }

  /**
   * A model whose vocabulary is grown to {@code newVocab}: the new rows of the embedding (and of
   * the untied lm_head) are the mean of the existing rows, so new tokens start as an average token.
   * The other weights are shared with this model.
   */
  public LlamaModel resizeTokenEmbeddings(int newVocab) {
    return resizeTokenEmbeddings(
        newVocab, new int[newVocab - Math.min(newVocab, config.vocabSize())][]);
  }

  /**
   * Grows the vocabulary to {@code newVocab}, initializing each new token's embedding (and untied
   * lm_head) row as the mean of the rows of {@code sourceIds[i]}, the existing tokens that the new
   * token's text encoded to before the vocabulary was extended (for id {@code oldVocab + i}). An
   * empty or null entry falls back to the mean of all existing rows.
   */
  public LlamaModel resizeTokenEmbeddings(int newVocab, int[][] sourceIds) {
    int old = config.vocabSize();
    if (newVocab == old) return this;
    if (newVocab < old)
      throw new ConfigException("cannot shrink the vocabulary from " + old + " to " + newVocab);
    if (sourceIds.length != newVocab - old)
      throw new IllegalArgumentException(
          "need source ids for " + (newVocab - old) + " new tokens, got " + sourceIds.length);
    for (int[] ids : sourceIds)
      if (ids != null)
        for (int id : ids)
          if (id < 0 || id >= old)
            throw new IllegalArgumentException("source id " + id + " is not an existing token");
    Map<String, Tensor> w = new LinkedHashMap<>(weights);
    w.put("model.embed_tokens.weight", grownRows(embed, sourceIds));
    if (!config.tieWordEmbeddings()) w.put("lm_head.weight", grownRows(lmHead, sourceIds));
    return new LlamaModel(config.withVocabSize(newVocab), w);
  }

  private static Tensor grownRows(Tensor old, int[][] sourceIds) {
    try (Scope s = Scope.open()) {
      Tensor f = old.detach().toFloat(); // (V, C)
      Tensor mean = f.mean(0, true); // (1, C)
      List<Tensor> rows = new java.util.ArrayList<>();
      rows.add(f);
      for (int[] ids : sourceIds) {
        if (ids == null || ids.length == 0) {
          rows.add(mean);
          continue;
        }
        long[] l = new long[ids.length];
        for (int i = 0; i < l.length; i++) l[i] = ids[i];
        rows.add(f.indexSelect(0, Torch.fromLongs(l, l.length).to(f.device())).mean(0, true));
      }
      return Torch.cat(rows, 0).to(old.dtype()).contiguous().retain();
    }
  }
}
