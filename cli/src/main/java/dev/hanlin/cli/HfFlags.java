package dev.hanlin.cli;

import dev.hanlin.config.StrictYaml;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Llama2-Chinese's command-line flags (HF {@code TrainingArguments} and the model and data
 * arguments of their {@code pretrain_clm.py} / {@code finetune_clm(_lora).py}) on {@code --mode
 * pretrain} and {@code --mode sft}. This table is the one place that says what each flag becomes: a
 * Hanlin config key, a note (it means nothing here), or a refusal (its feature is not here yet).
 * docs/llama2-chinese.md shows the same table with the defaults that differ.
 */
final class HfFlags {
  private HfFlags() {}

  /** How a flag's value is read. */
  enum Kind {
    STRING,
    INT,
    LONG,
    DOUBLE,
    /** bare ({@code --bf16}) or with true/false, as HF's {@code string_to_bool} */
    BOOL,
    /** one or more values up to the next flag ({@code --train_files a.csv b.csv}) */
    LIST,
    /** one comma-separated value ({@code --target_modules q_proj,v_proj}) */
    NAMES,
    /** {@code --config_overrides n_embd=10,resid_pdrop=0.2} */
    KEY_VALUES
  }

  /** What a flag does. */
  sealed interface Rule {
    Kind kind();
  }

  /** Sets {@code key}; a {@code key} with a dot sets a key of a section. */
  record Key(String key, Kind kind) implements Rule {}

  /** Accepted, changes nothing; {@code why} is printed once as a note. */
  record Note(Kind kind, String why) implements Rule {}

  /** Refused: the feature is not in Hanlin yet. */
  record Refuse(Kind kind, String why) implements Rule {}

  /** A flag whose value decides between a key, a note and a refusal. */
  record Special(Kind kind) implements Rule {}

  static final Map<String, Rule> TABLE = table();

  private static Map<String, Rule> table() {
    Map<String, Rule> t = new LinkedHashMap<>();
    // model
    t.put("model_name_or_path", new Key("model_name_or_path", Kind.STRING));
    t.put("config_name", new Key("model_config", Kind.STRING));
    t.put("config_overrides", new Key("config_overrides", Kind.KEY_VALUES));
    t.put("tokenizer_name", new Key("tokenizer", Kind.STRING));
    t.put("torch_dtype", new Special(Kind.STRING));
    t.put("load_in_bits", new Special(Kind.INT));
    // data
    t.put("train_files", new Key("train_files", Kind.LIST));
    t.put("validation_files", new Key("validation_files", Kind.LIST));
    t.put("validation_split_percentage", new Key("validation_split_percentage", Kind.DOUBLE));
    t.put("block_size", new Key("block_size", Kind.INT));
    t.put("max_seq_length", new Key("block_size", Kind.INT));
    t.put("max_train_samples", new Key("max_train_samples", Kind.LONG));
    t.put("max_eval_samples", new Key("max_eval_samples", Kind.LONG));
    // LoRA (flat keys, as their scripts name them)
    t.put("lora_r", new Key("lora_r", Kind.INT));
    t.put("lora_alpha", new Key("lora_alpha", Kind.DOUBLE));
    t.put("lora_dropout", new Key("lora_dropout", Kind.DOUBLE));
    t.put("target_modules", new Key("target_modules", Kind.NAMES));
    t.put("modules_to_save", new Key("modules_to_save", Kind.NAMES));
    // the run
    t.put("output_dir", new Key("output_dir", Kind.STRING));
    t.put("overwrite_output_dir", new Key("overwrite_output_dir", Kind.BOOL));
    t.put("resume_from_checkpoint", new Key("resume_from_checkpoint", Kind.STRING));
    t.put("per_device_train_batch_size", new Key("per_device_train_batch_size", Kind.INT));
    t.put("per_device_eval_batch_size", new Key("per_device_eval_batch_size", Kind.INT));
    t.put("gradient_accumulation_steps", new Key("gradient_accumulation_steps", Kind.INT));
    t.put("learning_rate", new Key("learning_rate", Kind.DOUBLE));
    t.put("weight_decay", new Key("weight_decay", Kind.DOUBLE));
    t.put("adam_beta1", new Key("adam_beta1", Kind.DOUBLE));
    t.put("adam_beta2", new Key("adam_beta2", Kind.DOUBLE));
    t.put("adam_epsilon", new Key("adam_epsilon", Kind.DOUBLE));
    t.put("max_grad_norm", new Key("max_grad_norm", Kind.DOUBLE));
    t.put("num_train_epochs", new Key("num_train_epochs", Kind.DOUBLE));
    t.put("max_steps", new Special(Kind.LONG));
    t.put("warmup_steps", new Key("warmup_steps", Kind.LONG));
    t.put("warmup_ratio", new Key("warmup_ratio", Kind.DOUBLE));
    t.put("lr_scheduler_type", new Special(Kind.STRING));
    t.put("logging_steps", new Key("logging_steps", Kind.LONG));
    t.put("save_steps", new Key("save_steps", Kind.LONG));
    t.put("save_strategy", new Key("save_strategy", Kind.STRING)); // steps | no
    t.put("eval_steps", new Key("eval_steps", Kind.LONG));
    t.put("save_total_limit", new Key("save_total_limit", Kind.INT));
    t.put("seed", new Key("seed", Kind.LONG));
    t.put("bf16", new Key("bf16", Kind.BOOL));
    t.put("fp16", new Special(Kind.BOOL));
    t.put("gradient_checkpointing", new Key("gradient_checkpointing", Kind.BOOL));
    t.put("ddp_timeout", new Key("dist_timeout_seconds", Kind.LONG));
    t.put("deepspeed", new Special(Kind.STRING));
    t.put("fsdp", new Key("fsdp", Kind.STRING)); // full_shard: zero_stage 3
    t.put("offload_optimizer", new Key("offload_optimizer", Kind.STRING)); // none | cpu
    t.put("optim", new Special(Kind.STRING));
    // meaning nothing here
    String train = "--mode pretrain / --mode sft is what trains";
    t.put("do_train", new Note(Kind.BOOL, train));
    t.put("do_eval", new Note(Kind.BOOL, "a validation split is always evaluated at the end"));
    t.put("report_to", new Note(Kind.LIST, "metrics.jsonl and TensorBoard files in runs/ always"));
    t.put("logging_dir", new Note(Kind.STRING, "TensorBoard files go to output_dir/runs"));
    t.put("run_name", new Note(Kind.STRING, "the run is named by its output_dir"));
    t.put("disable_tqdm", new Note(Kind.BOOL, "the progress line is drawn on a terminal only"));
    t.put("logging_strategy", new Note(Kind.STRING, "logging_steps decides"));
    t.put(
        "evaluation_strategy",
        new Note(Kind.STRING, "eval_steps decides (0: only at the end, which always happens)"));
    t.put(
        "eval_strategy",
        new Note(Kind.STRING, "eval_steps decides (0: only at the end, which always happens)"));
    t.put("use_fast_tokenizer", new Note(Kind.BOOL, "one SentencePiece-exact tokenizer"));
    t.put("preprocessing_num_workers", new Note(Kind.INT, "tokenization uses every core"));
    t.put("dataloader_num_workers", new Note(Kind.INT, "shards are memory-mapped"));
    t.put(
        "ddp_find_unused_parameters",
        new Note(Kind.BOOL, "every trained parameter gets a gradient"));
    t.put("local_rank", new Note(Kind.INT, "the rank comes from LOCAL_RANK (bin/launch)"));
    t.put("overwrite_cache", new Note(Kind.BOOL, "shards are re-made when their inputs change"));
    t.put("cache_dir", new Note(Kind.STRING, "token shards go to data_dir"));
    t.put("streaming", new Note(Kind.BOOL, "shards are memory-mapped, never loaded whole"));
    t.put("keep_linebreaks", new Note(Kind.BOOL, "text lines keep their line breaks"));
    t.put("ignore_data_skip", new Note(Kind.BOOL, "a resume restores the exact data cursor"));
    t.put("bf16_full_eval", new Note(Kind.BOOL, "evaluation runs in the training precision"));
    t.put("tf32", new Note(Kind.BOOL, "matmul precision is libtorch's default"));
    t.put("logging_first_step", new Note(Kind.BOOL, "the first step is always logged"));
    t.put("save_safetensors", new Note(Kind.BOOL, "weights are always safetensors"));
    t.put("low_cpu_mem_usage", new Note(Kind.BOOL, "weights are memory-mapped"));
    t.put("model_revision", new Note(Kind.STRING, "models are local folders"));
    t.put("use_auth_token", new Note(Kind.BOOL, "models are local folders"));
    t.put("trust_remote_code", new Note(Kind.BOOL, "Llama is built in"));
    t.put("model_type", new Note(Kind.STRING, "the model is Llama"));
    t.put("remove_unused_columns", new Note(Kind.BOOL, "fields are chosen by sft: keys"));
    // not in Hanlin yet
    t.put("do_predict", new Refuse(Kind.BOOL, "prediction is not supported yet (--mode eval)"));
    t.put("test_files", new Refuse(Kind.LIST, "a test split is not supported yet (--mode eval)"));
    t.put(
        "load_best_model_at_end",
        new Refuse(Kind.BOOL, "keeping the best checkpoint is not supported yet"));
    t.put(
        "neftune_noise_alpha",
        new Refuse(Kind.DOUBLE, "NEFTune embedding noise is not supported yet"));
    return Map.copyOf(t);
  }

  /** What the flags set, and the notes to print. */
  record Parsed(Map<String, Object> keys, List<String> notes) {
    boolean isEmpty() {
      return keys.isEmpty();
    }
  }

  /** Reads the flags picocli did not know; an unknown one is an error naming its closest match. */
  static Parsed parse(List<String> args) {
    Map<String, Object> keys = new LinkedHashMap<>();
    List<String> notes = new ArrayList<>();
    Path deepspeed = null;
    for (int i = 0; i < args.size(); i++) {
      String arg = args.get(i);
      if (!arg.startsWith("--") || arg.length() == 2)
        throw new IllegalArgumentException(
            "unexpected argument '" + arg + "' (flags start with --; values follow their flag)");
      String name = arg.substring(2);
      String inline = null;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        inline = name.substring(eq + 1);
        name = name.substring(0, eq);
      }
      name = name.replace('-', '_'); // HF accepts --per-device-train-batch-size too
      Rule rule = TABLE.get(name);
      if (rule == null) throw unknown(name);
      List<String> values = new ArrayList<>();
      if (inline != null) values.add(inline);
      else if (rule.kind() == Kind.BOOL) {
        if (i + 1 < args.size() && isBool(args.get(i + 1))) values.add(args.get(++i));
        else values.add("true");
      } else if (rule.kind() == Kind.LIST) {
        while (i + 1 < args.size() && !args.get(i + 1).startsWith("--")) values.add(args.get(++i));
      } else if (i + 1 < args.size()) values.add(args.get(++i));
      if (values.isEmpty()) throw new IllegalArgumentException("--" + name + " needs a value");
      Object v = convert(name, rule.kind(), values);
      switch (rule) {
        case Key k -> keys.put(k.key(), v);
        case Note n -> notes.add("--" + name + " has no effect here: " + n.why());
        case Refuse r -> throw new IllegalArgumentException("--" + name + ": " + r.why());
        case Special s -> {
          if (name.equals("deepspeed")) deepspeed = Path.of((String) v);
          else special(name, v, keys, notes);
        }
      }
    }
    if (deepspeed != null) DeepSpeedJson.apply(deepspeed, keys, notes);
    return new Parsed(keys, notes);
  }

  /** The flags whose value decides what they do. */
  private static void special(String name, Object v, Map<String, Object> keys, List<String> notes) {
    switch (name) {
      case "max_steps" -> {
        // HF's -1 is "no limit: train num_train_epochs"
        if ((Long) v == -1) keys.remove("max_steps");
        else keys.put("max_steps", v);
      }
      case "lr_scheduler_type" -> {
        String s = ((String) v).toLowerCase(Locale.ROOT);
        // HF's "constant" has no warmup, "constant_with_warmup" has; Hanlin's constant warms up
        // over warmup_steps (0 by default), so both are the same key
        if (s.equals("constant_with_warmup")) s = "constant";
        if (!Set.of("linear", "cosine", "constant").contains(s))
          throw new IllegalArgumentException(
              "--lr_scheduler_type "
                  + v
                  + " is not supported yet; Hanlin has linear, cosine and constant (each with"
                  + " linear warmup)");
        keys.put("lr_scheduler_type", s);
      }
      case "fp16" -> {
        if ((Boolean) v)
          throw new IllegalArgumentException(
              "--fp16: fp16 training (with loss scaling) is not supported yet; use --bf16");
        notes.add("--fp16 false has no effect here: fp16 is never used");
      }
      case "torch_dtype" -> {
        String s = ((String) v).toLowerCase(Locale.ROOT);
        if (s.equals("float16"))
          throw new IllegalArgumentException(
              "--torch_dtype float16 is not supported yet; use bfloat16 (with --bf16) or float32");
        if (!Set.of("auto", "bfloat16", "float32").contains(s))
          throw new IllegalArgumentException(
              "--torch_dtype must be auto, bfloat16, float32 or float16; got " + v);
        notes.add(
            "--torch_dtype has no effect here: weights load in fp32 and train in bf16 with"
                + " --bf16 (a LoRA base is held in bf16 on CUDA)");
      }
      case "load_in_bits" -> {
        int bits = (Integer) v;
        // 4: NF4 with double quantization (their bnb_4bit_quant_type nf4), 8: blockwise int8;
        // folded into the lora section like the other flat LoRA keys
        if (bits == 4 || bits == 8) {
          keys.put("load_in_bits", bits);
          return;
        }
        if (bits != 16 && bits != 32)
          throw new IllegalArgumentException("--load_in_bits must be 4, 8, 16 or 32; got " + bits);
        notes.add("--load_in_bits " + bits + " has no effect here: the base is not quantized");
      }
      case "optim" -> {
        String s = ((String) v).toLowerCase(Locale.ROOT);
        if (!s.startsWith("adamw") || s.contains("8bit") || s.contains("bnb"))
          throw new IllegalArgumentException(
              "--optim " + v + " is not supported yet; Hanlin trains with (fused) AdamW");
        notes.add("--optim " + v + " has no effect here: Hanlin's AdamW is fused already");
      }
      default -> throw new IllegalStateException(name);
    }
  }

  private static final Set<String> TRUE = Set.of("true", "yes", "t", "y", "1");
  private static final Set<String> FALSE = Set.of("false", "no", "f", "n", "0");

  private static boolean isBool(String s) {
    String l = s.toLowerCase(Locale.ROOT);
    return TRUE.contains(l) || FALSE.contains(l);
  }

  private static Object convert(String name, Kind kind, List<String> values) {
    String v = values.getFirst();
    try {
      return switch (kind) {
        case STRING -> v;
        case INT -> Integer.parseInt(v.trim());
        case LONG -> Long.parseLong(v.trim());
        case DOUBLE -> Double.parseDouble(v.trim());
        case BOOL -> {
          if (!isBool(v)) throw new IllegalArgumentException("expected true or false, got '" + v);
          yield TRUE.contains(v.toLowerCase(Locale.ROOT));
        }
        case LIST -> List.copyOf(values);
        case NAMES ->
            Arrays.stream(v.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
        case KEY_VALUES -> keyValues(name, v);
      };
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "--"
              + name
              + " expects "
              + (kind == Kind.DOUBLE ? "a number" : "a whole number")
              + ", got '"
              + v
              + "'");
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--" + name + ": " + e.getMessage(), e);
    }
  }

  /** run_clm's {@code --config_overrides}: {@code k=v,k=v}, values as numbers where they are. */
  private static Map<String, Object> keyValues(String name, String v) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (String pair : v.split(",")) {
      int eq = pair.indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException("expected k=v,k=v, got '" + v + "'");
      String val = pair.substring(eq + 1).trim();
      Object o = val;
      if (val.matches("-?\\d+")) o = Long.parseLong(val);
      else if (val.matches("-?[\\d.]+([eE]-?\\d+)?")) o = Double.parseDouble(val);
      else if (isBool(val) && !val.matches("\\d")) o = TRUE.contains(val.toLowerCase(Locale.ROOT));
      m.put(pair.substring(0, eq).trim(), o);
    }
    return m;
  }

  private static IllegalArgumentException unknown(String name) {
    String near = StrictYaml.closest(name, new ArrayList<Object>(TABLE.keySet()));
    return new IllegalArgumentException(
        "unknown flag --"
            + name
            + (near == null ? "" : " (did you mean --" + near + "?)")
            + "; Hanlin's own options are in --help, the Llama2-Chinese flags it takes in"
            + " docs/llama2-chinese.md");
  }
}
