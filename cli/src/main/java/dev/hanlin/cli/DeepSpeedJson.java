package dev.hanlin.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * A DeepSpeed JSON config ({@code --deepspeed ds_config.json}) read for what Hanlin has: the ZeRO
 * stage, bf16, gradient clipping, accumulation, the micro-batch, AdamW's settings and the warmup
 * schedule. {@code "auto"} takes the flag's value, as HF's integration does; an explicit value that
 * contradicts a flag is an error (HF refuses that too). What Hanlin lacks (ZeRO-3, parameter
 * offload, fp16) is refused; {@code offload_optimizer: cpu}, {@code overlap_comm} and {@code
 * reduce_bucket_size} are taken; sections without an equivalent get a note.
 */
final class DeepSpeedJson {
  private DeepSpeedJson() {}

  static void apply(Path file, Map<String, Object> keys, List<String> notes) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(java.nio.file.Files.readAllBytes(file));
    } catch (NoSuchFileException e) {
      throw new IllegalArgumentException("--deepspeed " + file + ": no such file", e);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(
          "--deepspeed "
              + file
              + ":"
              + e.getLocation().getLineNr()
              + ": not valid JSON: "
              + e.getOriginalMessage(),
          e);
    } catch (IOException e) {
      throw new IllegalArgumentException("--deepspeed " + file + ": " + e.getMessage(), e);
    }
    if (root == null || !root.isObject())
      throw new IllegalArgumentException("--deepspeed " + file + ": not a JSON object");
    new DeepSpeedJson.Reader(file, keys, notes).read(root);
  }

  private record Reader(Path file, Map<String, Object> keys, List<String> notes) {
    void read(JsonNode root) {
      List<String> inert = new ArrayList<>();
      for (var e : root.properties()) {
        String k = e.getKey();
        JsonNode v = e.getValue();
        switch (k) {
          case "zero_optimization" -> zero(v);
          case "bf16", "bfloat16" -> {
            JsonNode on = v.get("enabled");
            // HF: "auto" follows --bf16, whose default is off
            if (isAuto(on)) keys.putIfAbsent("bf16", false);
            else if (on != null) set(k + ".enabled", on.asBoolean(), "bf16");
          }
          case "fp16" -> {
            JsonNode on = v.get("enabled");
            if (on != null && !isAuto(on) && on.asBoolean())
              throw error(
                  "fp16.enabled",
                  "is true: fp16 training (with loss scaling) is not supported yet; use \"bf16\":"
                      + " {\"enabled\": true}");
          }
          case "gradient_clipping" -> number(k, v, "max_grad_norm");
          case "gradient_accumulation_steps" -> whole(k, v, "gradient_accumulation_steps");
          case "train_micro_batch_size_per_gpu" -> whole(k, v, "per_device_train_batch_size");
          case "train_batch_size" -> {
            if (!isAuto(v))
              notes.add(
                  file
                      + ": 'train_batch_size' is not checked here: the global batch is"
                      + " per_device_train_batch_size x gradient_accumulation_steps x processes");
          }
          case "optimizer" -> optimizer(v);
          case "scheduler" -> scheduler(v);
          default -> inert.add(k);
        }
      }
      if (!inert.isEmpty())
        notes.add(file + ": " + quoted(inert) + " have no effect here (no equivalent in Hanlin)");
    }

    void zero(JsonNode z) {
      JsonNode stage = z.get("stage");
      if (stage != null && !isAuto(stage)) {
        if (!stage.canConvertToExactIntegral() || stage.asInt() < 0 || stage.asInt() > 3)
          throw error("zero_optimization.stage", "must be 0, 1, 2 or 3, got " + stage);
        set("zero_optimization.stage", stage.asInt(), "zero_stage");
      }
      JsonNode param = z.get("offload_param");
      String paramDevice = param == null ? "none" : param.path("device").asText("none");
      if (!paramDevice.equalsIgnoreCase("none"))
        throw error(
            "zero_optimization.offload_param.device",
            "is "
                + paramDevice
                + ": offloading parameters is not supported yet; remove 'offload_param'"
                + " (offload_optimizer is supported)");
      JsonNode opt = z.get("offload_optimizer");
      String optDevice = opt == null ? "none" : opt.path("device").asText("none");
      if (optDevice.equalsIgnoreCase("cpu"))
        set("zero_optimization.offload_optimizer.device", "cpu", "offload_optimizer");
      else if (!optDevice.equalsIgnoreCase("none"))
        throw error(
            "zero_optimization.offload_optimizer.device",
            "is " + optDevice + ": only \"cpu\" (or \"none\") is supported");
      if (z.path("cpu_offload").asBoolean(false)) // DeepSpeed's older name for the same
      set("zero_optimization.cpu_offload", "cpu", "offload_optimizer");
      JsonNode overlap = z.get("overlap_comm");
      if (overlap != null && !isAuto(overlap)) {
        if (!overlap.isBoolean())
          throw error("zero_optimization.overlap_comm", "expected true or false, got " + overlap);
        set("zero_optimization.overlap_comm", overlap.asBoolean(), "overlap_comm");
      }
      whole(
          "zero_optimization.reduce_bucket_size",
          z.get("reduce_bucket_size"),
          "reduce_bucket_size");
      List<String> knobs = new ArrayList<>();
      for (String k : (Iterable<String>) z::fieldNames)
        if (!List.of(
                "stage",
                "offload_optimizer",
                "offload_param",
                "cpu_offload",
                "overlap_comm",
                "reduce_bucket_size")
            .contains(k)) knobs.add(k);
      if (!knobs.isEmpty())
        notes.add(
            file
                + ": zero_optimization's "
                + quoted(knobs)
                + " have no effect here (gradients go to their owners block by block)");
    }

    void optimizer(JsonNode o) {
      String type = o.path("type").asText("");
      if (!type.toLowerCase(Locale.ROOT).matches("adamw?"))
        throw error("optimizer.type", "is '" + type + "': only AdamW is supported");
      JsonNode p = o.path("params");
      number("optimizer.params.lr", p.get("lr"), "learning_rate");
      number("optimizer.params.eps", p.get("eps"), "adam_epsilon");
      number("optimizer.params.weight_decay", p.get("weight_decay"), "weight_decay");
      JsonNode betas = p.get("betas");
      if (betas != null && !isAuto(betas)) {
        if (!betas.isArray() || betas.size() != 2)
          throw error("optimizer.params.betas", "expected [beta1, beta2], got " + betas);
        number("optimizer.params.betas[0]", betas.get(0), "adam_beta1");
        number("optimizer.params.betas[1]", betas.get(1), "adam_beta2");
      }
    }

    void scheduler(JsonNode s) {
      String type = s.path("type").asText("");
      String shape =
          switch (type) {
            case "WarmupLR" -> "constant";
            case "WarmupDecayLR" -> "linear";
            case "WarmupCosineLR" -> "cosine";
            default ->
                throw error(
                    "scheduler.type",
                    "is '"
                        + type
                        + "': only WarmupLR, WarmupDecayLR and WarmupCosineLR are supported");
          };
      set("scheduler.type", shape, "lr_scheduler_type");
      JsonNode p = s.path("params");
      number("scheduler.params.warmup_max_lr", p.get("warmup_max_lr"), "learning_rate");
      whole("scheduler.params.warmup_num_steps", p.get("warmup_num_steps"), "warmup_steps");
      whole("scheduler.params.total_num_steps", p.get("total_num_steps"), "max_steps");
      JsonNode min = p.get("warmup_min_lr");
      if (min != null && !isAuto(min) && min.asDouble() != 0)
        notes.add(file + ": 'scheduler.params.warmup_min_lr' is not used: warmup starts at 0");
    }

    void number(String dsKey, JsonNode v, String key) {
      if (v == null || isAuto(v)) return;
      if (!v.isNumber()) throw error(dsKey, "expected a number or \"auto\", got " + v);
      set(dsKey, v.asDouble(), key);
    }

    void whole(String dsKey, JsonNode v, String key) {
      if (v == null || isAuto(v)) return;
      if (!v.canConvertToExactIntegral())
        throw error(dsKey, "expected a whole number or \"auto\", got " + v);
      set(dsKey, v.asLong(), key);
    }

    /** An explicit value: the flag's, if it gave the same one; else an error naming both. */
    void set(String dsKey, Object value, String key) {
      Object flag = keys.get(key);
      if (flag != null && !same(flag, value))
        throw error(
            dsKey,
            "is "
                + value
                + " but the flags give "
                + key
                + " = "
                + flag
                + "; make them agree or write \"auto\"");
      keys.put(key, value);
    }

    private static boolean same(Object a, Object b) {
      if (a instanceof Number x && b instanceof Number y) return x.doubleValue() == y.doubleValue();
      return Objects.equals(a, b);
    }

    IllegalArgumentException error(String dsKey, String message) {
      return new IllegalArgumentException(file + ": '" + dsKey + "' " + message);
    }
  }

  private static boolean isAuto(JsonNode v) {
    return v != null && v.isTextual() && v.asText().equals("auto");
  }

  private static String quoted(List<String> names) {
    return String.join(", ", names.stream().map(n -> "'" + n + "'").toList());
  }
}
