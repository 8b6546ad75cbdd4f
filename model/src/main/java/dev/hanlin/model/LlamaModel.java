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

  /** This model with every weight cast to {@code dtype} (itself when it is that dtype already). */
  public LlamaModel withDtype(DType dtype) {
    if (lora == null && weights.values().stream().allMatch(t -> t.dtype() == dtype)) return this;
    if (lora != null) throw new IllegalStateException("merge the LoRA adapters before casting");
    Map<String, Tensor> w = new LinkedHashMap<>();
    try (Scope s = Scope.open()) {
      weights.forEach((k, v) -> w.put(k, v.detach().to(dtype).contiguous().retain()));
    }
    return new LlamaModel(config.withDtype(dtype), w);
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
   * Logits (B, 1, V) of each row's last token, for rows that each continue their own sequence in a
   * slot of {@code cache}: row {@code i}'s ids (B, T) go at {@code positions} (B·T, row-major;
   * consecutive, starting at the slot's length) of slot {@code slots[i]}, and attend to that slot's
   * earlier tokens and to themselves causally. One prompt (B = 1, T = its length) or one decode
   * step of many sequences (T = 1). Positions come as Java longs so that the step needs no read
   * back from the device.
   */
  public Tensor forwardSlots(Tensor ids, long[] pos, long[] slots, SlotKvCache cache) {
    if (config.ropeScaling() instanceof RopeScaling.Dynamic)
      throw new UnsupportedOperationException(
          "dynamic RoPE scaling changes every position's angle as the sequence grows; the slot"
              + " cache does not support it");
    long b = ids.size(0), t = ids.size(1);
    if (pos.length != b * t || slots.length != b)
      throw new IllegalArgumentException("need B·T positions and B slots");
    long readLength = 0;
    long[] rows = new long[pos.length];
    for (int i = 0; i < b; i++)
      for (int j = 0; j < t; j++) {
        long p = pos[(int) (i * t + j)];
        if (p < 0 || p >= cache.capacity())
          throw new IllegalArgumentException(
              "position " + p + " is outside the slot capacity " + cache.capacity());
        rows[(int) (i * t + j)] = slots[i] * (long) cache.capacity() + p;
        readLength = Math.max(readLength, p + 1);
      }
    Device dev = device();
    Tensor positions = Torch.fromLongs(pos, b, t).to(dev);
    var step =
        new SlotKvCache.Step(
            Torch.fromLongs(rows, rows.length).to(dev),
            Torch.fromLongs(slots, slots.length).to(dev),
            readLength);
    Tensor x = Torch.embedding(embed, ids); // (B, T, C)
    Tensor[] cs = rotary.cosSin(0, readLength, x.dtype(), x.device()); // (L, D) each
    Tensor cos = Torch.embedding(cs[0], positions).unsqueeze(1); // (B, 1, T, D)
    Tensor sin = Torch.embedding(cs[1], positions).unsqueeze(1);
    Tensor keyPos = Torch.arange(0, readLength, 1, DType.I64, dev).view(1, 1, readLength);
    Tensor mask = positions.unsqueeze(2).ge(keyPos).unsqueeze(1); // (B, 1, T, L)
    for (TransformerBlock layer : layers) {
      try (Scope s = Scope.open()) {
        x = s.keep(layer.forwardSlots(x, cos, sin, cache, step, mask));
      }
    }
    // only the last token's logits choose the next one; a prompt's other T-1 rows of the
    // vocabulary-sized head would be wasted (half the work of a 30-token prompt and 32 tokens)
    return Torch.linear(norm.forward(x.narrow(1, t - 1, 1)), lmHead, null); // (B, 1, V)
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
   * Where each token sits and what it may attend to, as every block takes it: the rotary {@code
   * cos} and {@code sin}, (T, D) for rows at positions {@code [start, start + T)} or (B, 1, T, D)
   * gathered at each token's own position, and {@code mask}, null for causal attention or bool (B,
   * 1, T, T), true where a query may attend a key.
   */
  public record Positions(Tensor cos, Tensor sin, Tensor mask) {}

  /**
   * The {@link Positions} of {@code t} tokens: plain rows from {@code start} when {@code positions}
   * is null, else packed rows, where {@code positions} (B, T) restart at 0 at each sample and
   * {@code segments} (B, T) number a row's samples (a token attends only to earlier tokens of its
   * own sample).
   */
  public Positions positions(
      long start, long t, Tensor positions, Tensor segments, DType dtype, Device device) {
    Tensor[] cs = rotary.cosSin(start, t, dtype, device); // (T, D) each
    if (positions == null) return new Positions(cs[0], cs[1], null);
    Tensor cos = Torch.embedding(cs[0], positions).unsqueeze(1); // (B, 1, T, D)
    Tensor sin = Torch.embedding(cs[1], positions).unsqueeze(1);
    // same sample and not later: (B, 1, T, T), true where a query may attend a key
    Tensor mask =
        segments
            .unsqueeze(2)
            .eq(segments.unsqueeze(1))
            .and(positions.unsqueeze(2).ge(positions.unsqueeze(1)))
            .unsqueeze(1);
    return new Positions(cos, sin, mask);
  }

  /** The token embeddings (B, T, C) of ids (B, T): the first blocks' input. */
  public Tensor embed(Tensor ids) {
    return Torch.embedding(embed, ids);
  }

  /** The number of decoder layers. */
  public int layerCount() {
    return layers.size();
  }

  /** Decoder layer {@code i} over {@code x} (B, T, C), without a cache: its output (B, T, C). */
  public Tensor forwardLayer(int i, Tensor x, Positions p) {
    return layers.get(i).forward(x, p.cos(), p.sin(), null, p.mask());
  }

  /** Logits (B, T, V) of the last block's output (B, T, C): the final norm and the head. */
  public Tensor head(Tensor x) {
    return Torch.linear(norm.forward(x), lmHead, null);
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
