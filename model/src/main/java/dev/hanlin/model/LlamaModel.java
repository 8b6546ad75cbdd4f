package dev.hanlin.model;

import dev.hanlin.config.ConfigException;
import dev.hanlin.model.quant.QuantizedWeight;
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

  /** The 4- or 8-bit linear weights of a quantized base (load_in_bits), none otherwise. */
  private final Map<String, QuantizedWeight> quantized;

  private LlamaModel(LlamaConfig config, Map<String, Tensor> weights) {
    this(config, weights, Map.of(), null);
  }

  private LlamaModel(
      LlamaConfig config,
      Map<String, Tensor> weights,
      Map<String, QuantizedWeight> quantized,
      LoraAdapters lora) {
    this.config = config;
    this.lora = lora;
    this.weights = Collections.unmodifiableMap(new LinkedHashMap<>(weights));
    this.quantized = Collections.unmodifiableMap(new LinkedHashMap<>(quantized));
    this.embed = weights.get("model.embed_tokens.weight");
    this.lmHead = config.tieWordEmbeddings() ? embed : weights.get("lm_head.weight");
    this.norm = new RmsNorm(weights.get("model.norm.weight"), config.rmsNormEps());
    List<TransformerBlock> ls = new ArrayList<>();
    for (int i = 0; i < config.numHiddenLayers(); i++) {
      String p = "model.layers." + i + ".";
      Map<String, LoraLinear> la = lora == null ? Map.of() : lora.modules(i, true);
      Map<String, LoraLinear> lm = lora == null ? Map.of() : lora.modules(i, false);
      String a = p + "self_attn.", m = p + "mlp.";
      ls.add(
          new TransformerBlock(
              i,
              new RmsNorm(weights.get(p + "input_layernorm.weight"), config.rmsNormEps()),
              new Attention(
                  linear(a + "q_proj", la.get("q_proj")),
                  linear(a + "k_proj", la.get("k_proj")),
                  linear(a + "v_proj", la.get("v_proj")),
                  linear(a + "o_proj", la.get("o_proj")),
                  config),
              new RmsNorm(weights.get(p + "post_attention_layernorm.weight"), config.rmsNormEps()),
              new FeedForward(
                  linear(m + "gate_proj", lm.get("gate_proj")),
                  linear(m + "up_proj", lm.get("up_proj")),
                  linear(m + "down_proj", lm.get("down_proj")))));
    }
    this.layers = List.copyOf(ls);
    this.rotary = new Rotary(config);
  }

  /** The layer under HF module path {@code path} ({@code model.layers.0.self_attn.q_proj}). */
  private Linear linear(String path, LoraLinear adapter) {
    QuantizedWeight q = quantized.get(path + ".weight");
    BaseWeight w =
        q == null
            ? new BaseWeight.Dense(weights.get(path + ".weight"))
            : new BaseWeight.Quantized(q, embed.dtype());
    return new Linear(w, weights.get(path + ".bias"), adapter);
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
   * A model whose linear weights {@code quantized} holds in 4 or 8 bits (a frozen QLoRA base) and
   * whose other weights (embeddings, norms, head, biases) are the tensors of {@code dense};
   * together they must be every expected name with its shape. The quantized layers compute in the
   * dense weights' dtype.
   */
  public static LlamaModel fromWeights(
      LlamaConfig c, Map<String, Tensor> dense, Map<String, QuantizedWeight> quantized) {
    Map<String, long[]> expected = expectedShapes(c);
    Map<String, long[]> denseShapes = new LinkedHashMap<>(expected);
    for (var e : quantized.entrySet()) {
      long[] want = expected.get(e.getKey());
      if (want == null || !e.getKey().endsWith("_proj.weight"))
        throw new ConfigException("quantized weight " + e.getKey() + " is not a linear layer's");
      if (!java.util.Arrays.equals(want, e.getValue().shape()))
        throw new ConfigException(
            e.getKey()
                + " has shape "
                + java.util.Arrays.toString(e.getValue().shape())
                + ", the config expects "
                + java.util.Arrays.toString(want));
      denseShapes.remove(e.getKey());
    }
    Map<String, QuantizedWeight> ordered = new LinkedHashMap<>();
    for (String n : expected.keySet())
      if (quantized.containsKey(n)) ordered.put(n, quantized.get(n));
    return new LlamaModel(c, WeightCheck.match("weights", denseShapes, dense), ordered, null);
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
        Tensor t = initWeight(c, e.getKey(), e.getValue(), gen);
        w.put(e.getKey(), t.to(device, dtype, false).retain());
      }
    }
    return new LlamaModel(c, w);
  }

  /**
   * One weight of {@link #init}, float32 on the host, drawing from {@code gen}: called for every
   * name of {@link #expectedShapes} in that order with {@code Generator.cpu(seed)}, it gives init's
   * values (so a caller can build the model a piece at a time, as ZeRO-3's setup does).
   */
  public static Tensor initWeight(LlamaConfig c, String name, long[] shape, Generator gen) {
    Tensor t;
    if (name.endsWith("norm.weight")) t = Torch.ones(DType.F32, Device.CPU, shape);
    else if (name.endsWith(".bias")) t = Torch.zeros(DType.F32, Device.CPU, shape);
    else t = Torch.empty(DType.F32, Device.CPU, shape).normal_(0, c.initializerRange(), gen);
    if (name.equals("model.embed_tokens.weight") && c.padTokenId() != null)
      t.select(0, c.padTokenId()).zero_();
    return t;
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
    return new LlamaModel(config, w, quantized, adapters);
  }

  /**
   * This model with every weight cast to {@code dtype}: new tensors, detached, this model's left as
   * they are (itself when every weight is that dtype already, so a caller that frees the old
   * weights checks {@code cast != this}). The one dtype cast of a model: serving, merging, the bf16
   * LoRA base, master weights' bf16 compute copy and the bf16 export all use it. Quantized weights
   * stay as they are and dequantize to {@code dtype}.
   */
  public LlamaModel withDtype(DType dtype) {
    if (lora == null && weights.values().stream().allMatch(t -> t.dtype() == dtype)) return this;
    if (lora != null) throw new IllegalStateException("merge the LoRA adapters before casting");
    Map<String, Tensor> w = new LinkedHashMap<>();
    try (Scope s = Scope.open()) {
      weights.forEach((k, v) -> w.put(k, v.detach().to(dtype).contiguous().retain()));
    }
    return new LlamaModel(config.withDtype(dtype), w, quantized, null);
  }

  /** The LoRA adapters applied to this model, or null. */
  public LoraAdapters lora() {
    return lora;
  }

  /**
   * The weights under HF names, in HF order (the tied lm_head is not listed); of a quantized base,
   * those that are not quantized.
   */
  public Map<String, Tensor> weights() {
    return weights;
  }

  /** The linear weights held in 4 or 8 bits (load_in_bits) under HF names; empty if none. */
  public Map<String, QuantizedWeight> quantizedWeights() {
    return quantized;
  }

  /** Bytes the base's weights hold: tensors as stored, quantized ones with their statistics. */
  public long weightBytes() {
    long b = weights.values().stream().mapToLong(Tensor::byteSize).sum();
    return b + quantized.values().stream().mapToLong(QuantizedWeight::storageBytes).sum();
  }

  /**
   * A plain model whose quantized weights are dequantized to its dtype (the values its quantized
   * layers compute with), sharing the other weights; itself when nothing is quantized. For tests
   * and inspection: a merge goes into the full-precision base, never into this.
   */
  public LlamaModel dequantized() {
    if (quantized.isEmpty()) return this;
    if (lora != null) throw new IllegalStateException("dequantize the base before adding LoRA");
    Map<String, Tensor> w = new LinkedHashMap<>(weights);
    try (Scope s = Scope.open()) {
      quantized.forEach((k, q) -> w.put(k, q.dequantize(dtype()).retain()));
    }
    return fromWeights(config, w);
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
    return forward(ids, cache == null ? 0 : cache.length(), null, null, cache);
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
   * own sample). The one place the blocks' angles and masks are made, for every pass that runs the
   * whole model on a batch.
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

  /** The decoder layers, first to last. */
  public List<TransformerBlock> layers() {
    return layers;
  }

  /** Logits (B, T, V) of the last block's output (B, T, C): the final norm and the head. */
  public Tensor head(Tensor x) {
    return Torch.linear(norm.forward(x), lmHead, null);
  }

  /**
   * The final norm of the last block's output (B, T, C): the head's input, for a loss that applies
   * {@link #lmHeadWeight} to a few rows at a time instead of making all the logits at once.
   */
  public Tensor finalNorm(Tensor x) {
    return norm.forward(x);
  }

  /** The lm_head weight (V, C): the embedding itself when they are tied. */
  public Tensor lmHeadWeight() {
    return lmHead;
  }

  /**
   * The last block's output (B, T, C) for ids (B, T), before the final norm: plain rows when {@code
   * positions} and {@code segments} are null, else packed rows as {@link #forwardPacked}.
   */
  public Tensor hidden(Tensor ids, Tensor positions, Tensor segments) {
    return blocks(ids, 0, positions, segments, null);
  }

  private Tensor forward(Tensor ids, long start, Tensor positions, Tensor segments, KvCache cache) {
    return head(blocks(ids, start, positions, segments, cache)); // (B, T, V)
  }

  private Tensor blocks(Tensor ids, long start, Tensor positions, Tensor segments, KvCache cache) {
    long t = ids.size(1);
    Tensor x = embed(ids); // (B, T, C)
    Positions p = positions(start, t, positions, segments, x.dtype(), x.device());
    for (TransformerBlock layer : layers) {
      // A scope per layer frees the layer's temporaries now rather than at the end of the step;
      // autograd keeps what backward needs. Without it every activation lives until backward ends.
      try (Scope s = Scope.open()) {
        x = s.keep(layer.forward(x, p, cache));
      }
    }
    if (cache != null) cache.advance(t);
    return x; // (B, T, C)
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
    Tensor x = embed(ids); // (B, T, C)
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
    return head(x.narrow(1, t - 1, 1)); // (B, 1, V)
  }

  /**
   * Logits (B, T, V) for rows that pack several samples: {@code positions} (B, T) restart at 0 at
   * each sample, and {@code segments} (B, T) number the samples of a row, so that a token attends
   * only to earlier tokens of its own sample. Each sample's logits equal those of the sample alone.
   */
  public Tensor forwardPacked(Tensor ids, Tensor positions, Tensor segments) {
    return forward(ids, 0, positions, segments, null);
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
    return new LlamaModel(config.withVocabSize(newVocab), w, quantized, null);
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
