package dev.hanlin.model;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.hanlin.config.ConfigException;
import java.util.List;
import java.util.Set;

/**
 * LoRA hyperparameters under PEFT's {@code LoraConfig} names ({@code r}, {@code lora_alpha}, ...),
 * so the {@code lora:} section of a config and an {@code adapter_config.json} read the same way.
 * Each targeted linear layer {@code W} becomes {@code W + scaling · B A} with A (r, in), B (out,
 * r).
 */
@JsonIgnoreProperties(ignoreUnknown = false)
public record LoraConfig(
    @JsonProperty("r") Integer r,
    @JsonProperty("lora_alpha") Double alpha,
    @JsonProperty("lora_dropout") Double dropout,
    @JsonProperty("target_modules") List<String> targetModules,
    @JsonProperty("use_rslora") Boolean useRslora,
    @JsonProperty("modules_to_save") List<String> modulesToSave) {

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
