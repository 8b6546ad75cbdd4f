package dev.hanlin.train;

import static com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.hanlin.config.StrictYaml;
import dev.hanlin.data.sft.SftOptions;
import dev.hanlin.model.LoraConfig;
import dev.hanlin.train.optim.LrSchedule;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A pretraining run, read strictly from YAML (keys as in HF's run_clm / TrainingArguments, so
 * Llama2-Chinese users recognize them). Defaults are applied here; configs/pretrain-demo.yaml
 * comments every key.
 */
public record PretrainConfig(
    // the model
    @JsonProperty("model_name_or_path") String modelNameOrPath,
    @JsonProperty("model_config") String modelConfig,
    @JsonProperty("config_overrides") Map<String, Object> configOverrides,
    @JsonProperty("tokenizer") String tokenizer,
    // the data
    @JsonProperty("train_files") List<String> trainFiles,
    @JsonProperty("validation_files") List<String> validationFiles,
    @JsonProperty("validation_split_percentage") Double validationSplitPercentage,
    @JsonProperty("text_field") String textField,
    @JsonProperty("data_dir") String dataDir,
    @JsonProperty("block_size") Integer blockSize,
    @JsonProperty("max_train_samples") Long maxTrainSamples,
    @JsonProperty("max_eval_samples") Long maxEvalSamples,
    // the run
    @JsonProperty("output_dir") String outputDir,
    @JsonProperty("overwrite_output_dir") Boolean overwriteOutputDir,
    @JsonProperty("resume_from_checkpoint") String resumeFromCheckpoint,
    @JsonProperty("max_steps") Long maxSteps,
    @JsonProperty("num_train_epochs") Double numTrainEpochs,
    @JsonProperty("per_device_train_batch_size") Integer trainBatchSize,
    @JsonProperty("per_device_eval_batch_size") Integer evalBatchSize,
    @JsonProperty("gradient_accumulation_steps") Integer gradientAccumulationSteps,
    @JsonProperty("learning_rate") Double learningRate,
    @JsonProperty("min_lr") Double minLr,
    @JsonProperty("warmup_steps") Long warmupSteps,
    @JsonProperty("warmup_ratio") Double warmupRatio,
    @JsonProperty("lr_scheduler_type") String lrSchedulerType,
    @JsonProperty("weight_decay") Double weightDecay,
    @JsonProperty("adam_beta1") Double adamBeta1,
    @JsonProperty("adam_beta2") Double adamBeta2,
    @JsonProperty("adam_epsilon") Double adamEpsilon,
    @JsonProperty("max_grad_norm") Double maxGradNorm,
    @JsonProperty("seed") Long seed,
    @JsonProperty("device") String device,
    @JsonProperty("bf16") Boolean bf16,
    @JsonProperty("master_weights") Boolean masterWeights,
    @JsonProperty("gradient_checkpointing") Boolean gradientCheckpointing,
    @JsonProperty("logging_steps") Long loggingSteps,
    @JsonProperty("eval_steps") Long evalSteps,
    @JsonProperty("max_eval_batches") Long maxEvalBatches,
    @JsonProperty("save_steps") Long saveSteps,
    // HF's: steps (checkpoints at save_steps and at the end) or no (only the final export); absent
    // when not set, so resolved configs of runs that do not name it read as before
    @JsonProperty("save_strategy") @JsonInclude(NON_NULL) String saveStrategy,
    @JsonProperty("save_total_limit") Integer saveTotalLimit,
    @JsonProperty("max_nonfinite_steps") Integer maxNonfiniteSteps,
    @JsonProperty("max_shard_size") Long maxShardSize,
    @JsonProperty("stop_after_steps") Long stopAfterSteps,
    @JsonProperty("dist_timeout_seconds") Long distTimeoutSeconds,
    @JsonProperty("zero_stage") Integer zeroStage,
    // HF's fsdp flag ("full_shard" is zero_stage 3); folded into zero_stage below
    @JsonProperty("fsdp") @JsonInclude(NON_NULL) String fsdp,
    // ZeRO-2's bucketed, overlapped gradient reduce, and ZeRO-Offload (DeepSpeed's names)
    @JsonProperty("overlap_comm") Boolean overlapComm,
    @JsonProperty("reduce_bucket_size") Long reduceBucketSize,
    @JsonProperty("offload_optimizer") String offloadOptimizer,
    // offload's update overlapping the next forward (default true); absent when not set
    @JsonProperty("offload_optimizer_pipeline") @JsonInclude(NON_NULL)
        Boolean offloadOptimizerPipeline,
    // the hand-written block backward (issue 16): true, false or auto (on CUDA only); absent when
    // not set, so resolved configs of runs that do not name it read as before
    @JsonProperty("explicit_backward") @JsonInclude(NON_NULL) String explicitBackward,
    @JsonProperty("loss_chunk_tokens") Object lossChunkTokens,
    // instruction tuning (--mode sft): the data layout, and LoRA when set
    @JsonProperty("sft") SftOptions sft,
    @JsonProperty("lora") LoraConfig lora,
    // LoRA as flat keys, the way Llama2-Chinese's scripts take it; folded into 'lora' below, so
    // the resolved config shows the section only
    @JsonProperty("lora_r") @JsonInclude(NON_NULL) Integer loraR,
    @JsonProperty("lora_alpha") @JsonInclude(NON_NULL) Double loraAlpha,
    @JsonProperty("lora_dropout") @JsonInclude(NON_NULL) Double loraDropout,
    @JsonProperty("target_modules") @JsonInclude(NON_NULL) Object targetModules,
    @JsonProperty("modules_to_save") @JsonInclude(NON_NULL) Object modulesToSave,
    @JsonProperty("load_in_bits") @JsonInclude(NON_NULL) Integer loadInBits) {

  public PretrainConfig {
    tokenizer = or(tokenizer, modelNameOrPath); // as HF: the model folder's own tokenizer
    require(tokenizer, "tokenizer");
    require(outputDir, "output_dir");
    // SFT data is tokenized in memory; pretraining shards go beside the run unless told otherwise
    if (sft == null && dataDir == null && trainFiles != null && !trainFiles.isEmpty())
      dataDir = Path.of(outputDir, "data").toString();
    if (sft == null) require(dataDir, "data_dir");
    lora = foldFlatLora(lora, loraR, loraAlpha, loraDropout, targetModules, modulesToSave);
    lora = foldLoadInBits(lora, loadInBits);
    loadInBits = null;
    loraR = null;
    loraAlpha = null;
    loraDropout = null;
    targetModules = null;
    modulesToSave = null;
    if (lora != null && sft == null)
      throw new IllegalArgumentException("'lora' needs an 'sft' section (--mode sft)");
    if (lora != null && lora.loadInBits() != null && modelNameOrPath == null)
      throw new IllegalArgumentException(
          "'lora.load_in_bits' quantizes the base read from 'model_name_or_path' (an HF folder);"
              + " a run from 'model_config' has no trained base to quantize");
    if (modelNameOrPath == null && modelConfig == null)
      throw new IllegalArgumentException(
          "give 'model_name_or_path' (an HF folder) or 'model_config' (a config.json to start from)");
    configOverrides = configOverrides == null ? Map.of() : Map.copyOf(configOverrides);
    // as HF's run_clm: the overrides shape a model built from model_config; a model folder's
    // weights already have their shape
    if (modelNameOrPath != null && !configOverrides.isEmpty())
      throw new IllegalArgumentException(
          "'config_overrides' can't be used with 'model_name_or_path' (it changes the config of a"
              + " model built from 'model_config'; a model folder's weights fix its shape): remove"
              + " 'config_overrides' "
              + new java.util.TreeSet<>(configOverrides.keySet()));
    trainFiles = trainFiles == null ? List.of() : List.copyOf(trainFiles);
    validationFiles = validationFiles == null ? List.of() : List.copyOf(validationFiles);
    validationSplitPercentage = or(validationSplitPercentage, 0.0);
    textField = or(textField, "text");
    overwriteOutputDir = or(overwriteOutputDir, false);
    if (maxSteps == null && numTrainEpochs == null) numTrainEpochs = 1.0;
    if (maxSteps != null) positive(maxSteps, "max_steps");
    if (numTrainEpochs != null) positive(numTrainEpochs, "num_train_epochs");
    if (!(validationSplitPercentage >= 0 && validationSplitPercentage < 100))
      throw new IllegalArgumentException(
          "'validation_split_percentage' must be in [0, 100), got " + validationSplitPercentage);
    if (maxTrainSamples != null) positive(maxTrainSamples, "max_train_samples");
    if (maxEvalSamples != null) positive(maxEvalSamples, "max_eval_samples");
    trainBatchSize = positive(or(trainBatchSize, 8), "per_device_train_batch_size");
    evalBatchSize = positive(or(evalBatchSize, trainBatchSize), "per_device_eval_batch_size");
    gradientAccumulationSteps =
        positive(or(gradientAccumulationSteps, 1), "gradient_accumulation_steps");
    learningRate = or(learningRate, 3e-4);
    minLr = or(minLr, 0.0);
    if (!(learningRate > 0)) throw new IllegalArgumentException("'learning_rate' must be > 0");
    if (!(minLr >= 0 && minLr <= learningRate))
      throw new IllegalArgumentException("'min_lr' must be in [0, learning_rate]");
    warmupSteps = notNegative(or(warmupSteps, 0L), "warmup_steps");
    warmupRatio = or(warmupRatio, 0.0);
    if (!(warmupRatio >= 0 && warmupRatio <= 1))
      throw new IllegalArgumentException("'warmup_ratio' must be in [0, 1], got " + warmupRatio);
    lrSchedulerType = or(lrSchedulerType, "cosine");
    LrSchedule.Shape.parse(lrSchedulerType); // fails with the valid names
    weightDecay = notNegative(or(weightDecay, 0.0), "weight_decay");
    adamBeta1 = or(adamBeta1, 0.9);
    adamBeta2 = or(adamBeta2, 0.95);
    adamEpsilon = or(adamEpsilon, 1e-8);
    maxGradNorm = notNegative(or(maxGradNorm, 1.0), "max_grad_norm");
    seed = or(seed, 42L);
    device = or(device, "auto");
    gradientCheckpointing = or(gradientCheckpointing, false);
    masterWeights = or(masterWeights, false);
    if (masterWeights && Boolean.FALSE.equals(bf16))
      throw new IllegalArgumentException(
          "'master_weights: true' needs 'bf16' (it is bf16 training)");
    zeroStage = foldFsdp(zeroStage, fsdp);
    fsdp = null;
    if (masterWeights && lora != null)
      throw new IllegalArgumentException(
          "'master_weights' is for full training; with 'lora' the base is bf16 and the adapters"
              + " train in fp32 already");
    loggingSteps = positive(or(loggingSteps, 10L), "logging_steps");
    evalSteps = notNegative(or(evalSteps, 0L), "eval_steps");
    maxEvalBatches = notNegative(or(maxEvalBatches, 0L), "max_eval_batches");
    saveSteps = notNegative(or(saveSteps, 0L), "save_steps");
    if (saveStrategy != null) {
      saveStrategy = saveStrategy.toLowerCase(java.util.Locale.ROOT);
      // YAML 1.1 reads an unquoted no as the boolean false: a config tree merged with flags, and
      // --set save_strategy=no, hand the word over as "false"
      if (saveStrategy.equals("false")) saveStrategy = "no";
      if (!saveStrategy.equals("steps") && !saveStrategy.equals("no"))
        throw new IllegalArgumentException(
            "'save_strategy' must be steps (checkpoints every save_steps and at the end) or no"
                + " (no checkpoints, only the final model export), got '"
                + saveStrategy
                + "'");
      if (saveStrategy.equals("no") && saveSteps > 0)
        throw new IllegalArgumentException(
            "'save_strategy: no' writes no checkpoints: leave 'save_steps' out (or 0), got "
                + saveSteps);
    }
    saveTotalLimit = notNegative(or(saveTotalLimit, 0), "save_total_limit");
    if (stopAfterSteps != null) positive(stopAfterSteps, "stop_after_steps");
    maxNonfiniteSteps = positive(or(maxNonfiniteSteps, 5), "max_nonfinite_steps");
    maxShardSize = positive(or(maxShardSize, 5_000_000_000L), "max_shard_size");
    distTimeoutSeconds = positive(or(distTimeoutSeconds, 1800L), "dist_timeout_seconds");
    zeroStage = or(zeroStage, 0);
    if (explicitBackward != null && !List.of("true", "false", "auto").contains(explicitBackward))
      throw new IllegalArgumentException(
          "'explicit_backward' must be true, false or auto (on CUDA only), got '"
              + explicitBackward
              + "'");
    if (zeroStage < 0 || zeroStage > 3)
      throw new IllegalArgumentException(
          "'zero_stage' must be 0 (every rank keeps the whole optimizer state), 1 (each rank"
              + " keeps and updates its share), 2 (its share of the gradients too) or 3 (its share"
              + " of the parameters too); got "
              + zeroStage);
    overlapComm = or(overlapComm, false);
    reduceBucketSize =
        positive(or(reduceBucketSize, DEFAULT_REDUCE_BUCKET_SIZE), "reduce_bucket_size");
    offloadOptimizer = or(offloadOptimizer, "none").toLowerCase(java.util.Locale.ROOT);
    if (!offloadOptimizer.equals("none") && !offloadOptimizer.equals("cpu"))
      throw new IllegalArgumentException(
          "'offload_optimizer' must be none or cpu (fp32 master weights and AdamW state in host"
              + " memory), got "
              + offloadOptimizer);
    if (offloadOptimizer.equals("cpu")) { // the parameter: fields are set after this body
      if (Boolean.FALSE.equals(bf16))
        throw new IllegalArgumentException(
            "'offload_optimizer: cpu' needs 'bf16' (the model computes in bf16, its fp32 master"
                + " weights live in host memory)");
      if (masterWeights)
        throw new IllegalArgumentException(
            "'offload_optimizer: cpu' keeps the fp32 master weights in host memory itself: leave"
                + " 'master_weights' out");
      if (lora != null)
        throw new IllegalArgumentException(
            "'offload_optimizer' is for full training; a LoRA run's optimizer state is small");
      if (zeroStage > 2)
        throw new IllegalArgumentException(
            "'offload_optimizer' works with 'zero_stage' 0, 1 or 2, not yet with " + zeroStage);
    }
    if (offloadOptimizerPipeline != null && !offloadOptimizer.equals("cpu"))
      throw new IllegalArgumentException(
          "'offload_optimizer_pipeline' is about 'offload_optimizer: cpu', which is not set");
    lossChunkTokens = lossChunk(lossChunkTokens);
    if (zeroStage == 2 && !gradientCheckpointing)
      throw new IllegalArgumentException(
          "'zero_stage: 2' needs 'gradient_checkpointing: true': gradients are sent to their"
              + " owners block by block as the recomputing backward finishes them");
    if (zeroStage == 3 && !gradientCheckpointing)
      throw new IllegalArgumentException(
          "'zero_stage: 3' (fsdp: full_shard) needs 'gradient_checkpointing: true': each block's"
              + " weights are gathered and its gradients reduce-scattered as the recomputing"
              + " backward walks the model block by block");
    if (zeroStage == 3 && lora != null && lora.loadInBits() != null)
      throw new IllegalArgumentException(
          "'zero_stage: 3' with 'lora.load_in_bits' is not supported: zero_stage 3 shards a"
              + " dense frozen base, and a 4- or 8-bit base stays whole on every rank; drop"
              + " 'load_in_bits' (the bf16 base is then sharded over the ranks) or use"
              + " 'zero_stage' 0 to 2 with it");
  }

  /**
   * {@code zero_stage} from HF's {@code fsdp} option: {@code full_shard} (optionally with {@code
   * auto_wrap}, which per-block units always are) is 3, {@code shard_grad_op} 2, {@code no_shard}
   * or empty nothing; the two keys must agree when both are given.
   */
  static Integer foldFsdp(Integer zeroStage, String fsdp) {
    if (fsdp == null || fsdp.isBlank()) return zeroStage;
    java.util.Set<String> words =
        new java.util.TreeSet<>(
            java.util.List.of(fsdp.trim().toLowerCase(java.util.Locale.ROOT).split("[\\s,]+")));
    words.remove("auto_wrap");
    int stage =
        switch (String.join(" ", words)) {
          case "full_shard" -> 3;
          case "shard_grad_op" -> 2;
          case "no_shard", "" -> 0;
          default ->
              throw new IllegalArgumentException(
                  "'fsdp: "
                      + fsdp
                      + "' is not supported: use full_shard (zero_stage 3), shard_grad_op"
                      + " (zero_stage 2) or no_shard; CPU offload of parameters and hybrid"
                      + " sharding are not available");
        };
    if (zeroStage != null && zeroStage != stage)
      throw new IllegalArgumentException(
          "'fsdp: " + fsdp + "' means zero_stage " + stage + ", but 'zero_stage' is " + zeroStage);
    return stage;
  }

  /** DeepSpeed's default {@code reduce_bucket_size}, in elements. */
  public static final long DEFAULT_REDUCE_BUCKET_SIZE = 500_000_000L;

  /**
   * Whether offload's CPU update overlaps the next forward ({@code offload_optimizer_pipeline},
   * default true).
   */
  public boolean offloadPipeline() {
    return !Boolean.FALSE.equals(offloadOptimizerPipeline);
  }

  /**
   * Whether the run writes resumable checkpoints ({@code save_strategy: steps}, the default); with
   * {@code no} only the final model export.
   */
  public boolean savesCheckpoints() {
    return !"no".equals(saveStrategy);
  }

  /** Whether fp32 masters and AdamW state live in host memory ({@code offload_optimizer: cpu}). */
  public boolean offloadsOptimizer() {
    return "cpu".equals(offloadOptimizer);
  }

  /**
   * {@code loss_chunk_tokens}: {@code auto} chooses this many rows on CUDA, whole logits on CPU.
   */
  public static final int AUTO_LOSS_CHUNK_TOKENS = 4096;

  /**
   * {@code loss_chunk_tokens} as a number or {@code auto}: a count of tokens (rows) >= 0, 0 being
   * the whole logits at once.
   */
  private static Object lossChunk(Object v) {
    if (v == null || "auto".equals(v)) return "auto";
    if ((v instanceof Integer || v instanceof Long) && ((Number) v).longValue() >= 0)
      return ((Number) v).intValue() == ((Number) v).longValue() ? ((Number) v).intValue() : v;
    throw new IllegalArgumentException(
        "'loss_chunk_tokens' must be a count of tokens >= 0 (0: the whole logits at once) or"
            + " 'auto', got "
            + v);
  }

  /**
   * The rows of logits the loss makes at a time on {@code device}: the configured count, or for
   * {@code auto} {@link #AUTO_LOSS_CHUNK_TOKENS} on CUDA and 0 (the whole logits, the exact
   * historical path) elsewhere.
   */
  public long lossChunkRows(dev.hanlin.torch.Device device) {
    if ("auto".equals(lossChunkTokens)) return device.isCuda() ? AUTO_LOSS_CHUNK_TOKENS : 0;
    return ((Number) lossChunkTokens).longValue();
  }

  private static <T> T or(T v, T dflt) {
    return v == null ? dflt : v;
  }

  private static <T extends Number> T positive(T v, String key) {
    if (v.doubleValue() <= 0)
      throw new IllegalArgumentException("'" + key + "' must be > 0, got " + v);
    return v;
  }

  private static <T extends Number> T notNegative(T v, String key) {
    if (v.doubleValue() < 0)
      throw new IllegalArgumentException("'" + key + "' must be >= 0, got " + v);
    return v;
  }

  /**
   * The flat LoRA keys ({@code lora_r: 8}, {@code target_modules: q_proj,v_proj}) as a {@code
   * lora:} section; both forms at once would leave it unclear which wins, so that is an error.
   */
  private static LoraConfig foldFlatLora(
      LoraConfig lora, Integer r, Double alpha, Double dropout, Object targets, Object save) {
    Map<String, Object> flat = new java.util.LinkedHashMap<>();
    if (r != null) flat.put("lora_r", r);
    if (alpha != null) flat.put("lora_alpha", alpha);
    if (dropout != null) flat.put("lora_dropout", dropout);
    if (targets != null) flat.put("target_modules", targets);
    if (save != null) flat.put("modules_to_save", save);
    if (flat.isEmpty()) return lora;
    String first = flat.keySet().iterator().next();
    if (lora != null)
      throw new IllegalArgumentException(
          "'"
              + first
              + "' and the 'lora:' section both set LoRA: give the flat keys ("
              + String.join(", ", flat.keySet())
              + ") or the section, not both");
    return new LoraConfig(
        r, alpha, dropout, names(targets, "target_modules"), null, names(save, "modules_to_save"));
  }

  /**
   * The flat {@code load_in_bits} (Llama2-Chinese's {@code --load_in_bits 4}) as {@code
   * lora.load_in_bits}: it quantizes the frozen base of a LoRA run, so without LoRA it is an error.
   */
  private static LoraConfig foldLoadInBits(LoraConfig lora, Integer bits) {
    if (bits == null) return lora;
    if (lora == null)
      throw new IllegalArgumentException(
          "'load_in_bits' quantizes the frozen base of a LoRA run: give lora_r (or a lora:"
              + " section), or leave it out");
    if (lora.loadInBits() != null && !lora.loadInBits().equals(bits))
      throw new IllegalArgumentException(
          "'load_in_bits' is "
              + bits
              + " but 'lora.load_in_bits' is "
              + lora.loadInBits()
              + ": give one of them");
    return lora.withLoadInBits(bits);
  }

  /** A list of module names from a YAML list or a comma-separated string, as their scripts pass. */
  private static List<String> names(Object v, String key) {
    if (v == null) return null;
    if (v instanceof String s)
      return java.util.Arrays.stream(s.split(","))
          .map(String::trim)
          .filter(t -> !t.isEmpty())
          .toList();
    if (v instanceof List<?> l && l.stream().allMatch(String.class::isInstance))
      return l.stream().map(String.class::cast).map(String::trim).toList();
    throw new IllegalArgumentException(
        "'" + key + "' must be a list of module names or a comma-separated string, got " + v);
  }

  /**
   * Warmup steps of a run of {@code totalSteps}: {@code warmup_steps} when set, else {@code
   * warmup_ratio} of the run rounded up, as HF's {@code get_warmup_steps} does.
   */
  public long warmupStepsFor(long totalSteps) {
    return warmupSteps > 0 ? warmupSteps : (long) Math.ceil(warmupRatio * totalSteps);
  }

  private static void require(String v, String key) {
    if (v == null || v.isBlank()) throw new IllegalArgumentException("'" + key + "' is required");
  }

  /** Reads YAML (or null: overrides only) with {@code --set} overrides applied on top. */
  public static PretrainConfig load(Path yaml, Map<String, Object> overrides) {
    return StrictYaml.read(yaml, PretrainConfig.class, overrides);
  }

  /** Tokens per optimizer step on one process. */
  public long tokensPerStep(int block) {
    return (long) trainBatchSize * gradientAccumulationSteps * block;
  }

  /**
   * Whether {@code explicit_backward} asks for the explicit backward on {@code cuda} or not: {@code
   * auto} (and unset) on CUDA only.
   */
  public boolean explicitBackwardOn(boolean cuda) {
    // on by default on CUDA: on the H200 it beats autograd at every measured shape (TinyLlama
    // 63.9k vs 56.2k tokens/s at micro-batch 8, 7B LoRA 8.6k vs 6.7k; bench/results/2026-12-02-
    // h200-fused-speed-2.log); on the CPU, autograd's path stays the reference, bit for bit
    if (explicitBackward == null) return cuda;
    return explicitBackward.equals("auto") ? cuda : explicitBackward.equals("true");
  }
}
