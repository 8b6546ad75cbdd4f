package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Llama2-Chinese's flags and DeepSpeed JSON, read into config keys, notes and refusals. */
class HfFlagsTest {
  @TempDir Path dir;

  static HfFlags.Parsed parse(String... args) {
    return HfFlags.parse(List.of(args));
  }

  @Test
  void theirFlagsMapToConfigKeysInBothForms() {
    HfFlags.Parsed p =
        parse(
            "--model_name_or_path",
            "meta-llama/Llama-2-7b-hf",
            "--train_files",
            "a.csv",
            "b.csv",
            "--per_device_train_batch_size=4",
            "--learning_rate",
            "1e-4",
            "--bf16",
            "--gradient_checkpointing",
            "false",
            "--overwrite_output_dir",
            "--target_modules",
            "q_proj,k_proj",
            "--max_steps",
            "-1",
            "--lr_scheduler_type",
            "constant_with_warmup",
            "--config_overrides",
            "num_hidden_layers=2,rope_theta=10000.0",
            "--ddp_timeout",
            "18000");
    Map<String, Object> k = p.keys();
    assertEquals("meta-llama/Llama-2-7b-hf", k.get("model_name_or_path"));
    assertEquals(List.of("a.csv", "b.csv"), k.get("train_files"));
    assertEquals(4, k.get("per_device_train_batch_size"));
    assertEquals(1e-4, k.get("learning_rate"));
    assertEquals(true, k.get("bf16"));
    assertEquals(false, k.get("gradient_checkpointing"));
    assertEquals(true, k.get("overwrite_output_dir"));
    assertEquals(List.of("q_proj", "k_proj"), k.get("target_modules"));
    assertFalse(k.containsKey("max_steps"), "HF's -1 is 'no limit'");
    assertEquals("constant", k.get("lr_scheduler_type"));
    assertEquals(Map.of("num_hidden_layers", 2L, "rope_theta", 10000.0), k.get("config_overrides"));
    assertEquals(18000L, k.get("dist_timeout_seconds"));
    assertTrue(p.notes().isEmpty(), p.notes().toString());
  }

  /** Their finetune_lora.sh passes --load_in_bits 4: the flat key the lora section folds in. */
  @Test
  void loadInBitsFourOrEightQuantizesTheLoraBase() {
    assertEquals(
        Map.of("load_in_bits", 4, "lora_r", 8),
        parse("--load_in_bits", "4", "--lora_r", "8").keys());
    assertEquals(Map.of("load_in_bits", 8), parse("--load_in_bits=8").keys());
    var p = parse("--load_in_bits", "16");
    assertEquals(Map.of(), p.keys());
    assertTrue(p.notes().getFirst().contains("the base is not quantized"), p.notes().toString());
    var e = assertThrows(IllegalArgumentException.class, () -> parse("--load_in_bits", "2"));
    assertEquals("--load_in_bits must be 4, 8, 16 or 32; got 2", e.getMessage());
  }

  @Test
  void flagsMeaningNothingHereGetOneNoteEach() {
    HfFlags.Parsed p =
        parse(
            "--do_train",
            "--do_eval",
            "--report_to",
            "tensorboard",
            "--ddp_find_unused_parameters",
            "false",
            "--use_fast_tokenizer",
            "false",
            "--logging_dir",
            "out/logs",
            "--preprocessing_num_workers",
            "10",
            "--output_dir",
            "out");
    assertEquals(Map.of("output_dir", "out"), p.keys());
    assertEquals(7, p.notes().size(), p.notes().toString());
    assertTrue(p.notes().getFirst().startsWith("--do_train has no effect here: "));
  }

  @Test
  void missingFeaturesAreRefusedSayingSo() {
    for (String[] args :
        List.of(
            new String[] {"--fp16"},
            new String[] {"--torch_dtype", "float16"},
            new String[] {"--lr_scheduler_type", "polynomial"},
            new String[] {"--do_predict"})) {
      var e = assertThrows(IllegalArgumentException.class, () -> parse(args));
      assertTrue(e.getMessage().startsWith(args[0]), e.getMessage());
      assertTrue(e.getMessage().contains("not supported yet"), e.getMessage());
    }
    var u = assertThrows(IllegalArgumentException.class, () -> parse("--learnig_rate", "1"));
    assertTrue(u.getMessage().contains("unknown flag --learnig_rate"), u.getMessage());
    assertTrue(u.getMessage().contains("did you mean --learning_rate?"), u.getMessage());
    var n = assertThrows(IllegalArgumentException.class, () -> parse("--seed", "x"));
    assertEquals("--seed expects a whole number, got 'x'", n.getMessage());
    var v = assertThrows(IllegalArgumentException.class, () -> parse("--output_dir"));
    assertEquals("--output_dir needs a value", v.getMessage());
  }

  @Test
  void deepSpeedZero2WithAutoValuesTakesTheFlags() throws Exception {
    Path ds =
        Files.writeString(
            dir.resolve("ds_config_zero2.json"),
            """
            {
              "fp16": {"enabled": "auto", "loss_scale": 0},
              "bf16": {"enabled": "auto"},
              "zero_optimization": {"stage": 2, "overlap_comm": true, "contiguous_gradients": true},
              "gradient_accumulation_steps": "auto",
              "gradient_clipping": 0.5,
              "train_batch_size": "auto",
              "train_micro_batch_size_per_gpu": "auto",
              "steps_per_print": 2000,
              "wall_clock_breakdown": false
            }
            """);
    HfFlags.Parsed p =
        parse("--deepspeed", ds.toString(), "--bf16", "--gradient_accumulation_steps", "4");
    assertEquals(2, p.keys().get("zero_stage"));
    assertEquals(true, p.keys().get("bf16"));
    assertEquals(4, p.keys().get("gradient_accumulation_steps"));
    assertEquals(0.5, p.keys().get("max_grad_norm"));
    assertFalse(p.keys().containsKey("per_device_train_batch_size"));
    String notes = String.join("\n", p.notes());
    assertTrue(notes.contains("'contiguous_gradients' have no effect"), notes);
    assertEquals(true, p.keys().get("overlap_comm")); // DeepSpeed's bucketed, overlapped reduce
    assertTrue(notes.contains("'steps_per_print', 'wall_clock_breakdown' have no effect"), notes);
    // bf16 "auto" without --bf16 is off, as HF's default
    assertEquals(false, parse("--deepspeed", ds.toString()).keys().get("bf16"));
  }

  @Test
  void zero3FromDeepSpeedOrFsdpFullShard() throws Exception {
    Path ds =
        Files.writeString(
            dir.resolve("ds_config_zero3.json"),
            "{\"zero_optimization\": {\"stage\": 3, \"stage3_prefetch_bucket_size\": \"auto\"}}");
    HfFlags.Parsed p = parse("--deepspeed", ds.toString(), "--gradient_checkpointing");
    assertEquals(3, p.keys().get("zero_stage"));
    assertTrue(
        String.join("\n", p.notes()).contains("'stage3_prefetch_bucket_size' have no effect"),
        p.notes().toString());
    assertEquals(
        "full_shard auto_wrap", parse("--fsdp", "full_shard auto_wrap").keys().get("fsdp"));
  }

  @Test
  void deepSpeedOffloadAndOverlapBecomeTheirKeysAndTheFlatFlagToo() throws Exception {
    Path ds =
        Files.writeString(
            dir.resolve("off.json"),
            """
            {"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu",
             "pin_memory": true}, "overlap_comm": true, "reduce_bucket_size": 2e8}}
            """);
    Map<String, Object> k = parse("--deepspeed", ds.toString()).keys();
    assertEquals("cpu", k.get("offload_optimizer"));
    assertEquals(true, k.get("overlap_comm"));
    assertEquals(200_000_000L, k.get("reduce_bucket_size"));
    assertEquals(2, k.get("zero_stage"));
    assertEquals("cpu", parse("--offload_optimizer", "cpu").keys().get("offload_optimizer"));
    // DeepSpeed's older spelling
    Path old =
        Files.writeString(
            dir.resolve("old.json"), "{\"zero_optimization\": {\"cpu_offload\": true}}");
    assertEquals("cpu", parse("--deepspeed", old.toString()).keys().get("offload_optimizer"));
    // "auto" takes the flags'; a contradiction is an error naming both
    Path auto =
        Files.writeString(
            dir.resolve("auto.json"), "{\"zero_optimization\": {\"overlap_comm\": \"auto\"}}");
    assertEquals(null, parse("--deepspeed", auto.toString()).keys().get("overlap_comm"));
    var e =
        assertThrows(
            IllegalArgumentException.class,
            () -> parse("--offload_optimizer", "none", "--deepspeed", ds.toString()));
    assertTrue(e.getMessage().contains("offload_optimizer = none"), e.getMessage());
  }

  @Test
  void deepSpeedRefusalsAndConflictsNameTheFileAndKey() throws Exception {
    Path z3 =
        Files.writeString(
            dir.resolve("z3.json"),
            "{\"zero_optimization\": {\"stage\": 3, \"offload_param\": {\"device\": \"cpu\"}}}");
    var e = assertThrows(IllegalArgumentException.class, () -> parse("--deepspeed", z3.toString()));
    assertTrue(
        e.getMessage().startsWith(z3 + ": 'zero_optimization.offload_param.device' is cpu"),
        e.getMessage());
    assertTrue(e.getMessage().contains("not supported yet"), e.getMessage());
    Path nvme =
        Files.writeString(
            dir.resolve("nvme.json"),
            "{\"zero_optimization\": {\"stage\": 2, \"offload_optimizer\": {\"device\": \"nvme\"}}}");
    e = assertThrows(IllegalArgumentException.class, () -> parse("--deepspeed", nvme.toString()));
    assertTrue(
        e.getMessage().startsWith(nvme + ": 'zero_optimization.offload_optimizer.device' is nvme"),
        e.getMessage());
    Path acc = Files.writeString(dir.resolve("acc.json"), "{\"gradient_accumulation_steps\": 8}");
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> parse("--gradient_accumulation_steps", "4", "--deepspeed", acc.toString()));
    assertTrue(
        e.getMessage().startsWith(acc + ": 'gradient_accumulation_steps' is 8 but the flags give"),
        e.getMessage());
    assertEquals(
        8L, parse("--deepspeed", acc.toString()).keys().get("gradient_accumulation_steps"));
    Path bad = Files.writeString(dir.resolve("bad.json"), "{\n\"stage\": 2,,\n}");
    e = assertThrows(IllegalArgumentException.class, () -> parse("--deepspeed", bad.toString()));
    assertTrue(
        e.getMessage().startsWith("--deepspeed " + bad + ":2: not valid JSON"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> parse("--deepspeed", dir.resolve("none.json").toString()));
    assertTrue(e.getMessage().endsWith("none.json: no such file"), e.getMessage());
  }

  @Test
  void deepSpeedOptimizerAndSchedulerSectionsMapToAdamWAndTheSchedule() throws Exception {
    Path ds =
        Files.writeString(
            dir.resolve("opt.json"),
            """
            {
              "optimizer": {"type": "AdamW",
                            "params": {"lr": 2e-4, "betas": [0.9, 0.95], "eps": "auto",
                                       "weight_decay": 0.1}},
              "scheduler": {"type": "WarmupDecayLR",
                            "params": {"warmup_min_lr": 1e-6, "warmup_max_lr": "auto",
                                       "warmup_num_steps": 100, "total_num_steps": "auto"}}
            }
            """);
    HfFlags.Parsed p = parse("--deepspeed", ds.toString(), "--learning_rate", "2e-4");
    Map<String, Object> k = p.keys();
    assertEquals(2e-4, k.get("learning_rate"));
    assertEquals(0.95, k.get("adam_beta2"));
    assertEquals(0.1, k.get("weight_decay"));
    assertFalse(k.containsKey("adam_epsilon"), "auto: the default");
    assertEquals("linear", k.get("lr_scheduler_type"));
    assertEquals(100L, k.get("warmup_steps"));
    assertFalse(k.containsKey("max_steps"));
    assertTrue(String.join("\n", p.notes()).contains("'scheduler.params.warmup_min_lr'"));
    Path sgd = Files.writeString(dir.resolve("sgd.json"), "{\"optimizer\": {\"type\": \"SGD\"}}");
    var e =
        assertThrows(IllegalArgumentException.class, () -> parse("--deepspeed", sgd.toString()));
    assertEquals(sgd + ": 'optimizer.type' is 'SGD': only AdamW is supported", e.getMessage());
  }
}
