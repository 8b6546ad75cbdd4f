package dev.hanlin.model;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.hanlin.config.ConfigException;
import java.util.List;
import java.util.Set;

/**
 * LoRA hyperparameters under PEFT's {@code LoraConfig} names ({@code r}, {@code lora_alpha}, ...),
 * so the {@code lora:} section of a config and an {@code adapter_config.json} read the same way.
 * Each targeted linear layer {@code W} becomes {@code W + scaling · B A} with A (r, in), B (out,
 * r). {@code load_in_bits} (4 or 8, absent for none) holds the frozen base quantized, as QLoRA
 * does; it is a loading choice, not part of the adapter, so {@code adapter_config.json} never has
 * it.
 */
@JsonIgnoreProperties(ignoreUnknown = false)
public record LoraConfig(
    @JsonProperty("r") Integer r,
    @JsonProperty("lora_alpha") Double alpha,
    @JsonProperty("lora_dropout") Double dropout,
    @JsonProperty("target_modules") List<String> targetModules,
    @JsonProperty("use_rslora") Boolean useRslora,
    @JsonProperty("modules_to_save") List<String> modulesToSave,
    // absent when not set, so a resolved config (and a checkpoint's config.yaml) reads as before
    @JsonProperty("load_in_bits") @JsonInclude(JsonInclude.Include.NON_NULL) Integer loadInBits) {

  /** The linear layers of a Llama block that LoRA can adapt, by their HF module names. */
  public static final List<String> ALL_TARGETS =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

  /** Whole modules that can be trained and saved beside the adapters. */
  public static final Set<String> SAVABLE = Set.of("embed_tokens", "lm_head");

  public LoraConfig {
    r = r == null ? 8 : r;
    alpha = alpha == null ? 16.0 : alpha;
    dropout = dropout == null ? 0.05 : dropout;
    targetModules = targetModules == null ? ALL_TARGETS : List.copyOf(targetModules);
    useRslora = useRslora != null && useRslora;
    modulesToSave = modulesToSave == null ? List.of() : List.copyOf(modulesToSave);
    if (r < 1) throw new IllegalArgumentException("lora 'r' must be >= 1, got " + r);
    if (!(dropout >= 0 && dropout < 1))
      throw new IllegalArgumentException("'lora_dropout' must be in [0, 1), got " + dropout);
    if (targetModules.isEmpty())
      throw new IllegalArgumentException("'target_modules' must name at least one module");
    for (String t : targetModules)
      if (!ALL_TARGETS.contains(t))
        throw new IllegalArgumentException(
            "unknown target module '" + t + "'; valid: " + String.join(", ", ALL_TARGETS));
    for (String m : modulesToSave)
      if (!SAVABLE.contains(m))
        throw new IllegalArgumentException(
            "unknown module to save '" + m + "'; valid: embed_tokens, lm_head");
    if (loadInBits != null && loadInBits != 4 && loadInBits != 8)
      throw new IllegalArgumentException(
          "lora 'load_in_bits' must be 4 (NF4, QLoRA) or 8 (int8), got " + loadInBits);
  }

  /** Without a quantized base, as PEFT configs and every config before load_in_bits. */
  public LoraConfig(
      Integer r,
      Double alpha,
      Double dropout,
      List<String> targetModules,
      Boolean useRslora,
      List<String> modulesToSave) {
    this(r, alpha, dropout, targetModules, useRslora, modulesToSave, null);
  }

  /** This config with the base quantized to {@code bits} (4 or 8; null for none). */
  public LoraConfig withLoadInBits(Integer bits) {
    return new LoraConfig(r, alpha, dropout, targetModules, useRslora, modulesToSave, bits);
  }

  /** The bits the base is quantized to while loading, 0 for none (the base in the run's dtype). */
  public int baseBits() {
    return loadInBits == null ? 0 : loadInBits;
  }

  /**
   * Whether the run must recompute each block in backward (gradient checkpointing), as PEFT's
   * {@code prepare_model_for_kbit_training} turns it on for a quantized base. Each quantized layer
   * dequantizes its weight for the product and frees it, but autograd keeps the dequantized copy
   * the input's gradient needs until backward: without recomputation every layer's copy stays alive
   * through the forward, a whole bf16 model again, and the 4-bit base saves nothing. Recomputing
   * block by block keeps at most one block's copies.
   */
  public boolean needsGradientCheckpointing() {
    return loadInBits != null;
  }

  /** PEFT's scaling: alpha / r, or alpha / sqrt(r) with rsLoRA. */
  public double scaling() {
    return useRslora ? alpha / Math.sqrt(r) : alpha / r;
  }

  /**
   * For a run whose tokenizer has more pieces than the base model has rows: the grown embedding and
   * head must be trained and saved with the adapter, or the adapter is useless beside the extended
   * tokenizer (Chinese-LLaMA-Alpaca's recipe saves both).
   *
   * @throws ConfigException naming what to add
   */
  public void requireGrownModulesSaved(boolean tied, int tokenizerVocab, int modelVocab) {
    List<String> need = tied ? List.of("embed_tokens") : List.of("embed_tokens", "lm_head");
    if (modulesToSave.containsAll(need)) return;
    throw new ConfigException(
        "the tokenizer has "
            + tokenizerVocab
            + " pieces, the base model "
            + modelVocab
            + " embedding rows: with LoRA the grown rows must be trained and saved in the"
            + " adapter; add modules_to_save: ["
            + String.join(", ", need)
            + "] to the lora section (as Chinese-LLaMA-Alpaca's recipe does)");
  }

  /** HF weight names of the modules to save ({@code model.embed_tokens.weight}, ...). */
  public List<String> savedWeightNames() {
    return modulesToSave.stream()
        .map(m -> m.equals("lm_head") ? "lm_head.weight" : "model.embed_tokens.weight")
        .toList();
  }
}
