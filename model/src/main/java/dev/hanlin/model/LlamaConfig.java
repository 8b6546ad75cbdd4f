package dev.hanlin.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hanlin.config.ConfigException;
import dev.hanlin.torch.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * The Llama hyperparameters, as in HF {@code config.json}. Validated on construction; derived
 * values are methods. Reads both the transformers 4 layout ({@code rope_theta}, {@code
 * rope_scaling}, {@code torch_dtype}) and the transformers 5 one ({@code rope_parameters}, {@code
 * dtype}), and writes one that both load.
 */
public record LlamaConfig(
    int vocabSize,
    int hiddenSize,
    int intermediateSize,
    int numHiddenLayers,
    int numAttentionHeads,
    int numKeyValueHeads,
    int headDim,
    double rmsNormEps,
    double ropeTheta,
    RopeScaling ropeScaling,
    int maxPositionEmbeddings,
    boolean tieWordEmbeddings,
    double initializerRange,
    int bosTokenId,
    List<Integer> eosTokenIds,
    Integer padTokenId,
    DType dtype,
    boolean attentionBias,
    boolean mlpBias) {

  public LlamaConfig {
    positive("vocab_size", vocabSize);
    positive("hidden_size", hiddenSize);
    positive("intermediate_size", intermediateSize);
    positive("num_hidden_layers", numHiddenLayers);
    positive("num_attention_heads", numAttentionHeads);
    positive("num_key_value_heads", numKeyValueHeads);
    positive("head_dim", headDim);
    positive("max_position_embeddings", maxPositionEmbeddings);
    if (numAttentionHeads % numKeyValueHeads != 0)
      throw new ConfigException(
          "num_attention_heads ("
              + numAttentionHeads
              + ") must be a multiple of num_key_value_heads ("
              + numKeyValueHeads
              + ")");
    if (headDim % 2 != 0) throw new ConfigException("head_dim must be even, got " + headDim);
    if (!(rmsNormEps > 0)) throw new ConfigException("rms_norm_eps must be > 0");
    if (!(ropeTheta > 0)) throw new ConfigException("rope_theta must be > 0");
    if (!(initializerRange >= 0)) throw new ConfigException("initializer_range must be >= 0");
    if (ropeScaling == null) ropeScaling = new RopeScaling.None();
    eosTokenIds = List.copyOf(eosTokenIds);
    if (dtype == null) dtype = DType.F32;
    if (!dtype.isFloatingPoint()) throw new ConfigException("torch_dtype must be a float type");
    for (int id : eosTokenIds) tokenId("eos_token_id", id, vocabSize);
    tokenId("bos_token_id", bosTokenId, vocabSize);
    if (padTokenId != null) tokenId("pad_token_id", padTokenId, vocabSize);
  }

  private static void positive(String field, int v) {
    if (v <= 0) throw new ConfigException(field + " must be > 0, got " + v);
  }

  private static void tokenId(String field, int id, int vocab) {
    if (id < 0 || id >= vocab)
      throw new ConfigException(field + " " + id + " is outside the vocabulary [0, " + vocab + ")");
  }

  /** Query heads per key/value head. */
  public int groupSize() {
    return numAttentionHeads / numKeyValueHeads;
  }

  /** Parameters in the model (the tied lm_head counted once). */
  public long parameterCount() {
    long h = hiddenSize,
        q = (long) numAttentionHeads * headDim,
        kv = (long) numKeyValueHeads * headDim;
    long attn = h * q * 2 + h * kv * 2 + (attentionBias ? q * 2 + kv * 2 - q + h : 0);
    long mlp = 3L * h * intermediateSize + (mlpBias ? 2L * intermediateSize + h : 0);
    long layer = attn + mlp + 2 * h;
    long emb = (long) vocabSize * h;
    return numHiddenLayers * layer + h + emb * (tieWordEmbeddings ? 1 : 2);
  }

  /** A copy with another vocabulary size (for embedding resizes). */
  public LlamaConfig withVocabSize(int v) {
    return new LlamaConfig(
        v,
        hiddenSize,
        intermediateSize,
        numHiddenLayers,
        numAttentionHeads,
        numKeyValueHeads,
        headDim,
        rmsNormEps,
        ropeTheta,
        ropeScaling,
        maxPositionEmbeddings,
        tieWordEmbeddings,
        initializerRange,
        bosTokenId,
        eosTokenIds,
        padTokenId,
        dtype,
        attentionBias,
        mlpBias);
  }

  /** A copy with another stored dtype. */
  public LlamaConfig withDtype(DType d) {
    return new LlamaConfig(
        vocabSize,
        hiddenSize,
        intermediateSize,
        numHiddenLayers,
        numAttentionHeads,
        numKeyValueHeads,
        headDim,
        rmsNormEps,
        ropeTheta,
        ropeScaling,
        maxPositionEmbeddings,
        tieWordEmbeddings,
        initializerRange,
        bosTokenId,
        eosTokenIds,
        padTokenId,
        d,
        attentionBias,
        mlpBias);
  }

  // ---- presets ----

  /** TinyLlama-1.1B's shape. */
  public static LlamaConfig tinyLlama1b() {
    return new LlamaConfig(
        32000,
        2048,
        5632,
        22,
        32,
        4,
        64,
        1e-5,
        10000,
        null,
        2048,
        false,
        0.02,
        1,
        List.of(2),
        null,
        DType.BF16,
        false,
        false);
  }

  /** Llama-2-7B's shape. */
  public static LlamaConfig llama2_7b() {
    return new LlamaConfig(
        32000,
        4096,
        11008,
        32,
        32,
        32,
        128,
        1e-5,
        10000,
        null,
        4096,
        false,
        0.02,
        1,
        List.of(2),
        null,
        DType.F16,
        false,
        false);
  }

  // ---- HF config.json ----

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /** Reads {@code config.json}; errors name the file and the field. */
  public static LlamaConfig read(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readString(file));
    } catch (NoSuchFileException e) {
      throw new ConfigException(file + ": not found (an HF model folder needs config.json)");
    } catch (JsonProcessingException e) {
      throw new ConfigException(
          file
              + ": invalid JSON at line "
              + e.getLocation().getLineNr()
              + ": "
              + e.getOriginalMessage());
    } catch (IOException e) {
      throw new ConfigException(file + ": " + e.getMessage(), e);
    }
    try {
      return fromJson(root);
    } catch (ConfigException e) {
      throw new ConfigException(file + ": " + e.getMessage(), e);
    }
  }

  /** Parses an HF config tree. */
  public static LlamaConfig fromJson(JsonNode n) {
    if (!n.isObject()) throw new ConfigException("config must be a JSON object");
    String type = n.path("model_type").asText("llama");
    if (!type.equals("llama") && !type.equals("mistral"))
      throw new ConfigException("model_type '" + type + "' is not a Llama model");
    int hidden = intField(n, "hidden_size", null);
    int heads = intField(n, "num_attention_heads", null);
    if (hidden % heads != 0 && !n.hasNonNull("head_dim"))
      throw new ConfigException("hidden_size must be a multiple of num_attention_heads");
    JsonNode rope = n.path("rope_parameters");
    double theta =
        rope.hasNonNull("rope_theta")
            ? doubleField(rope, "rope_theta", null)
            : doubleField(n, "rope_theta", 10000.0);
    JsonNode scaling = n.hasNonNull("rope_scaling") ? n.get("rope_scaling") : rope;
    List<Integer> eos;
    JsonNode e = n.get("eos_token_id");
    if (e == null || e.isNull()) eos = List.of();
    else if (e.isArray())
      eos =
          java.util.stream.StreamSupport.stream(e.spliterator(), false)
              .map(x -> intValue("eos_token_id", x))
              .toList();
    else eos = List.of(intValue("eos_token_id", e));
    String dt =
        n.hasNonNull("dtype") ? n.get("dtype").asText() : n.path("torch_dtype").asText("float32");
    DType dtype;
    try {
      dtype = DType.fromHf(dt);
    } catch (IllegalArgumentException ex) {
      throw new ConfigException("torch_dtype: " + ex.getMessage());
    }
    return new LlamaConfig(
        intField(n, "vocab_size", null),
        hidden,
        intField(n, "intermediate_size", null),
        intField(n, "num_hidden_layers", null),
        heads,
        intField(n, "num_key_value_heads", heads),
        intField(n, "head_dim", hidden / heads),
        doubleField(n, "rms_norm_eps", 1e-6),
        theta,
        ropeScaling(scaling, n),
        intField(n, "max_position_embeddings", 2048),
        boolField(n, "tie_word_embeddings", false),
        doubleField(n, "initializer_range", 0.02),
        intField(n, "bos_token_id", 1),
        eos,
        n.hasNonNull("pad_token_id") ? intField(n, "pad_token_id", null) : null,
        dtype,
        boolField(n, "attention_bias", false),
        boolField(n, "mlp_bias", false));
  }

  private static RopeScaling ropeScaling(JsonNode s, JsonNode root) {
    if (s == null || s.isMissingNode() || s.isNull()) return new RopeScaling.None();
    if (!s.isObject()) throw new ConfigException("rope_scaling must be an object or null");
    String t =
        s.hasNonNull("rope_type") ? s.get("rope_type").asText() : s.path("type").asText("default");
    String f = "rope_scaling.";
    return switch (t) {
      case "default" -> new RopeScaling.None();
      case "linear" -> new RopeScaling.Linear(doubleField(s, "factor", null, f));
      case "dynamic" -> new RopeScaling.Dynamic(doubleField(s, "factor", null, f));
      case "llama3" ->
          new RopeScaling.Llama3(
              doubleField(s, "factor", null, f),
              doubleField(s, "low_freq_factor", null, f),
              doubleField(s, "high_freq_factor", null, f),
              intField(s, "original_max_position_embeddings", null, f));
      default ->
          throw new ConfigException(
              f + "rope_type '" + t + "' is not supported (default, linear, dynamic, llama3)");
    };
  }

  private static int intField(JsonNode n, String k, Integer dflt) {
    return intField(n, k, dflt, "");
  }

  private static int intField(JsonNode n, String k, Integer dflt, String prefix) {
    JsonNode v = n.get(k);
    if (v == null || v.isNull()) {
      if (dflt == null) throw new ConfigException("missing required field " + prefix + k);
      return dflt;
    }
    return intValue(prefix + k, v);
  }

  private static int intValue(String k, JsonNode v) {
    if (!v.isIntegralNumber() || !v.canConvertToInt())
      throw new ConfigException(k + " must be an integer, got " + v);
    return v.intValue();
  }

  private static double doubleField(JsonNode n, String k, Double dflt) {
    return doubleField(n, k, dflt, "");
  }

  private static double doubleField(JsonNode n, String k, Double dflt, String prefix) {
    JsonNode v = n.get(k);
    if (v == null || v.isNull()) {
      if (dflt == null) throw new ConfigException("missing required field " + prefix + k);
      return dflt;
    }
    if (!v.isNumber()) throw new ConfigException(prefix + k + " must be a number, got " + v);
    return v.doubleValue();
  }

  private static boolean boolField(JsonNode n, String k, boolean dflt) {
    JsonNode v = n.get(k);
    if (v == null || v.isNull()) return dflt;
    if (!v.isBoolean()) throw new ConfigException(k + " must be true or false, got " + v);
    return v.booleanValue();
  }

  /** The HF {@code config.json} tree (transformers 4 keys, which transformers 5 also reads). */
  public ObjectNode toJson() {
    ObjectNode n = JSON.createObjectNode();
    n.putArray("architectures").add("LlamaForCausalLM");
    n.put("model_type", "llama");
    n.put("vocab_size", vocabSize);
    n.put("hidden_size", hiddenSize);
    n.put("intermediate_size", intermediateSize);
    n.put("num_hidden_layers", numHiddenLayers);
    n.put("num_attention_heads", numAttentionHeads);
    n.put("num_key_value_heads", numKeyValueHeads);
    n.put("head_dim", headDim);
    n.put("hidden_act", "silu");
    n.put("rms_norm_eps", rmsNormEps);
    n.put("rope_theta", ropeTheta);
    switch (ropeScaling) {
      case RopeScaling.None x -> n.putNull("rope_scaling");
      case RopeScaling.Linear l ->
          n.putObject("rope_scaling").put("rope_type", "linear").put("factor", l.factor());
      case RopeScaling.Dynamic d ->
          n.putObject("rope_scaling").put("rope_type", "dynamic").put("factor", d.factor());
      case RopeScaling.Llama3 l ->
          n.putObject("rope_scaling")
              .put("rope_type", "llama3")
              .put("factor", l.factor())
              .put("low_freq_factor", l.lowFreqFactor())
              .put("high_freq_factor", l.highFreqFactor())
              .put("original_max_position_embeddings", l.originalMaxPositions());
    }
    n.put("max_position_embeddings", maxPositionEmbeddings);
    n.put("tie_word_embeddings", tieWordEmbeddings);
    n.put("initializer_range", initializerRange);
    n.put("attention_bias", attentionBias);
    n.put("attention_dropout", 0.0);
    n.put("mlp_bias", mlpBias);
    n.put("pretraining_tp", 1);
    n.put("use_cache", true);
    n.put("bos_token_id", bosTokenId);
    if (eosTokenIds.size() == 1) n.put("eos_token_id", eosTokenIds.getFirst());
    else {
      ArrayNode a = n.putArray("eos_token_id");
      eosTokenIds.forEach(a::add);
    }
    if (padTokenId == null) n.putNull("pad_token_id");
    else n.put("pad_token_id", padTokenId);
    n.put("torch_dtype", dtype.hfName());
    return n;
  }

  /** Writes {@code config.json} text. */
  public String toJsonString() {
    try {
      return JSON.writeValueAsString(toJson()) + "\n";
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
