package dev.hanlin.model;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hanlin.config.ConfigException;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import dev.hanlin.torch.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * LoRA adapters in PEFT's folder layout: {@code adapter_config.json} (a {@code LoraConfig}) and
 * {@code adapter_model.safetensors} with PEFT's key names ({@code
 * base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight}, modules to save as {@code
 * base_model.model.lm_head.weight}), so {@code peft.PeftModel.from_pretrained} loads what Hanlin
 * saves and Hanlin loads what PEFT saves.
 */
public final class PeftAdapter {
  public static final String CONFIG = "adapter_config.json";
  public static final String WEIGHTS = "adapter_model.safetensors";
  static final String PREFIX = "base_model.model.";
  private static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  private PeftAdapter() {}

  /** Writes the adapter folder (fp32 tensors); {@code baseModel} is recorded as PEFT does. */
  public static void save(LoraAdapters adapters, Path dir, String baseModel) throws IOException {
    Files.createDirectories(dir);
    Map<String, Tensor> out = new LinkedHashMap<>();
    try (Scope s = Scope.open()) {
      adapters
          .weights()
          .forEach((k, v) -> out.put(PREFIX + k, v.detach().to(Device.CPU).contiguous()));
      SafetensorsWriter.write(dir.resolve(WEIGHTS), out, Map.of("format", "pt"));
    }
    HfCheckpoint.writeAtomically(
        dir.resolve(CONFIG), JSON.writeValueAsString(configJson(adapters.config(), baseModel)));
  }

  /** The {@code adapter_config.json} PEFT writes for a LoRA adapter of a causal LM. */
  static ObjectNode configJson(LoraConfig c, String baseModel) {
    ObjectNode n = JSON.createObjectNode();
    n.put("peft_type", "LORA");
    n.put("task_type", "CAUSAL_LM");
    n.put("base_model_name_or_path", baseModel);
    n.putNull("revision");
    n.put("inference_mode", true);
    n.put("r", c.r());
    if (c.alpha() == Math.rint(c.alpha())) n.put("lora_alpha", c.alpha().longValue()); // as PEFT
    else n.put("lora_alpha", c.alpha());
    n.put("lora_dropout", c.dropout());
    c.targetModules().forEach(n.putArray("target_modules")::add);
    n.put("bias", "none");
    n.put("fan_in_fan_out", false);
    n.put("use_rslora", c.useRslora());
    n.put("use_dora", false);
    n.put("init_lora_weights", true);
    if (c.modulesToSave().isEmpty()) n.putNull("modules_to_save");
    else c.modulesToSave().forEach(n.putArray("modules_to_save")::add);
    n.putNull("layers_to_transform");
    n.putNull("layers_pattern");
    n.putObject("rank_pattern");
    n.putObject("alpha_pattern");
    return n;
  }

  /** Reads {@code adapter_config.json}; features Hanlin does not implement are errors. */
  public static LoraConfig readConfig(Path dir) throws IOException {
    Path f = dir.resolve(CONFIG);
    if (!Files.exists(f)) throw new ConfigException(dir + ": no " + CONFIG + " (not an adapter)");
    JsonNode n = JSON.readTree(f.toFile());
    if (!"LORA".equals(n.path("peft_type").asText("LORA")))
      throw new ConfigException(f + ": peft_type " + n.get("peft_type") + " is not LORA");
    if (n.path("use_dora").asBoolean(false))
      throw new ConfigException(f + ": DoRA adapters are not supported");
    if (!"none".equals(n.path("bias").asText("none")))
      throw new ConfigException(f + ": bias " + n.get("bias") + " is not supported (only none)");
    if (n.path("fan_in_fan_out").asBoolean(false))
      throw new ConfigException(f + ": fan_in_fan_out is not supported");
    for (String k : new String[] {"rank_pattern", "alpha_pattern"})
      if (n.has(k) && n.get(k).isObject() && !n.get(k).isEmpty())
        throw new ConfigException(f + ": per-layer '" + k + "' is not supported");
    if (n.hasNonNull("layers_to_transform"))
      throw new ConfigException(f + ": layers_to_transform is not supported");
    JsonNode targets = n.get("target_modules");
    if (targets != null && targets.isTextual())
      throw new ConfigException(f + ": target_modules as a regex is not supported; list them");
    try {
      return JSON.treeToValue(n, LoraConfig.class);
    } catch (IllegalArgumentException | com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new ConfigException(f + ": " + e.getMessage(), e);
    }
  }

  /** Loads an adapter folder for a model of config {@code c}, as fp32 tensors on {@code device}. */
  public static LoraAdapters load(Path dir, LlamaConfig c, Device device) throws IOException {
    return fromWeights(dir, readConfig(dir), c, readWeights(dir, device));
  }

  /**
   * The base model with the adapter of {@code dir} applied, the one way every mode loads an
   * adapter. When the adapter saved {@code embed_tokens} (and an untied {@code lm_head}, PEFT's
   * {@code modules_to_save}) with more rows than the base has, as a LoRA run on an extended
   * tokenizer does, the base is grown to that vocabulary first (its new rows are replaced by the
   * saved ones). An adapter folder holding a tokenizer larger than the model it would give is an
   * error, so nothing writes a model beside a tokenizer it cannot embed.
   */
  public static LlamaModel loadOnto(Path dir, LlamaModel base, Device device) throws IOException {
    LoraConfig lc = readConfig(dir);
    Map<String, Tensor> w = readWeights(dir, device);
    LlamaConfig c = base.config();
    Tensor embed = w.get("model.embed_tokens.weight");
    int rows = c.vocabSize();
    if (embed != null && embed.dim() == 2 && embed.size(0) > rows) {
      int grown = Math.toIntExact(embed.size(0));
      boolean headSaved = c.tieWordEmbeddings() || w.containsKey("lm_head.weight");
      if (!headSaved)
        throw new ConfigException(
            dir
                + ": the adapter's embed_tokens has "
                + grown
                + " rows, the base "
                + rows
                + ", but it saves no lm_head, whose new rows were trained and lost; retrain"
                + " with modules_to_save: [embed_tokens, lm_head]");
      base = base.resizeTokenEmbeddings(grown); // the saved modules replace the new rows
      c = base.config();
    }
    Tokenizer tok = adapterTokenizer(dir);
    if (tok != null && tok.vocabSize() > c.vocabSize())
      throw new ConfigException(
          dir
              + ": its tokenizer has "
              + tok.vocabSize()
              + " pieces, the base model and adapter "
              + c.vocabSize()
              + " embedding rows: the adapter was trained without saving the grown embeddings;"
              + " retrain with modules_to_save: [embed_tokens, lm_head]"
              + (c.tieWordEmbeddings() ? " (embed_tokens: the head is tied)" : "")
              + ", or resize the base first (--mode resize-vocab)");
    return fromWeights(dir, lc, c, w).applyTo(base);
  }

  private static Tokenizer adapterTokenizer(Path dir) {
    if (!Tokenizer.isIn(dir)) return null;
    try {
      return Tokenizer.load(dir);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(dir + ": cannot read its tokenizer: " + e.getMessage(), e);
    }
  }

  /** The adapter's tensors under HF names (PEFT's prefix removed), fp32 on {@code device}. */
  private static Map<String, Tensor> readWeights(Path dir, Device device) throws IOException {
    Map<String, Tensor> w = new LinkedHashMap<>();
    Path f = dir.resolve(WEIGHTS);
    if (!Files.exists(f)) throw new ConfigException(dir + ": no " + WEIGHTS);
    try (SafetensorsFile sf = SafetensorsFile.open(f)) {
      for (String name : sf.names()) {
        if (!name.startsWith(PREFIX))
          throw new ConfigException(f + ": key '" + name + "' lacks PEFT's prefix " + PREFIX);
        try (Scope s = Scope.open()) {
          w.put(name.substring(PREFIX.length()), sf.load(name, DType.F32, device).retain());
        }
      }
    }
    return w;
  }

  private static LoraAdapters fromWeights(
      Path dir, LoraConfig lc, LlamaConfig c, Map<String, Tensor> w) {
    try {
      return LoraAdapters.fromWeights(c, lc, w);
    } catch (ConfigException e) {
      throw new ConfigException(dir.resolve(WEIGHTS) + ": " + e.getMessage(), e);
    }
  }
}
