package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.hanlin.train.PretrainConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Llama2-Chinese's command lines, their flag names and a translated DeepSpeed JSON, run to the end
 * on a tiny model on the CPU: the values land in the resolved config.yaml, the flags that mean
 * nothing here get their notes, and configs/llama2-chinese/ loads with every key commented.
 */
class Llama2ChineseRunTest {
  static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  @TempDir Path tmp;

  /**
   * The tiny model and tokenizer, as their --config_name / --config_overrides / --tokenizer_name.
   */
  static List<String> tinyModel() {
    Path repo = TinyRun.repo();
    return List.of(
        "--config_name",
        repo.resolve("configs/demo/tiny-llama.json").toString(),
        "--config_overrides",
        "hidden_size=64,intermediate_size=128,num_hidden_layers=2,num_attention_heads=4,"
            + "num_key_value_heads=2",
        "--tokenizer_name",
        repo.resolve("configs/demo/tokenizer.model").toString());
  }

  @Test
  void loraFinetuneLinesRunToTheEnd() throws Exception {
    Path repo = TinyRun.repo();
    Path out = tmp.resolve("lora");
    Path ds = Files.createDirectories(tmp.resolve("ds")).resolve("ds_config_zero2.json");
    // their ZeRO-2 file, with an explicit clipping value to see it taken
    Files.writeString(
        ds,
        Files.readString(repo.resolve("configs/llama2-chinese/ds_config_zero2.json"))
            .replace("\"gradient_clipping\": \"auto\"", "\"gradient_clipping\": 0.7"));
    List<String> args = new ArrayList<>(List.of("--mode", "sft"));
    args.addAll(tinyModel());
    args.addAll(
        List.of(
            "--train_files",
            repo.resolve("test-data/sft/lunyu_chat.csv").toString(),
            "--validation_split_percentage",
            "10",
            "--per_device_train_batch_size",
            "4",
            "--per_device_eval_batch_size",
            "4",
            "--do_train",
            "--do_eval",
            "--use_fast_tokenizer",
            "false",
            "--output_dir",
            out.toString(),
            "--evaluation_strategy",
            "steps",
            "--max_eval_samples",
            "6",
            "--learning_rate",
            "1e-3",
            "--gradient_accumulation_steps",
            "2",
            "--max_steps",
            "3",
            "--warmup_ratio",
            "0.34",
            "--lora_r",
            "4",
            "--lora_alpha",
            "8",
            "--target_modules",
            "q_proj,v_proj",
            "--logging_dir",
            out + "/logs",
            "--logging_steps=1",
            "--save_steps",
            "3",
            "--seed",
            "7",
            "--block_size",
            "160",
            "--gradient_checkpointing",
            "--report_to",
            "tensorboard",
            "--ddp_find_unused_parameters",
            "false",
            "--overwrite_output_dir",
            "--deepspeed",
            ds.toString(),
            "--set",
            "sft.format=chat",
            "--set",
            "device=cpu"));
    Path log = tmp.resolve("lora.log");
    assertEquals(0, SftRunTest.run(log, args.toArray(String[]::new)), () -> read(log));
    String text = read(log);
    for (String flag :
        List.of("do_train", "do_eval", "use_fast_tokenizer", "evaluation_strategy", "logging_dir"))
      assertEquals(1, count(text, "note: --" + flag + " has no effect here"), flag + "\n" + text);
    // the DeepSpeed knobs without equivalent (overlap_comm and reduce_bucket_size have one)
    assertTrue(text.contains("'allgather_bucket_size'"), text);

    JsonNode c = YAML.readTree(out.resolve("config.yaml").toFile());
    assertEquals(4, c.at("/lora/r").asInt());
    assertEquals(8.0, c.at("/lora/lora_alpha").asDouble());
    assertEquals("[\"q_proj\",\"v_proj\"]", c.at("/lora/target_modules").toString());
    assertEquals(0.7, c.get("max_grad_norm").asDouble());
    assertEquals(2, c.get("zero_stage").asInt());
    assertEquals(false, c.get("bf16").asBoolean()); // "auto" without --bf16
    assertEquals(2, c.get("gradient_accumulation_steps").asInt());
    assertEquals(3, c.get("max_steps").asInt());
    assertEquals(6, c.get("max_eval_samples").asInt());
    assertEquals(0.001, c.get("learning_rate").asDouble());
    assertEquals(7, c.get("seed").asInt());
    assertEquals("chat", c.at("/sft/format").asText());

    JsonNode adapter = new ObjectMapper().readTree(out.resolve("adapter_config.json").toFile());
    assertEquals(4, adapter.get("r").asInt());
    List<JsonNode> train = SftRunTest.metrics(out, "train");
    assertEquals(3, train.size());
    // warmup_ratio 0.34 of 3 steps: ceil(1.02) = 2 warmup steps, so step 2 runs at the peak
    assertEquals(1e-3, train.get(1).get("lr").asDouble(), 1e-12, train.get(1).toString());
    assertTrue(train.get(0).get("lr").asDouble() < 1e-3, train.get(0).toString());
    assertTrue(text.contains("sft split:"), text);
  }

  @Test
  void pretrainLineWithoutAConfigRunsToTheEnd() throws Exception {
    Path repo = TinyRun.repo();
    Path out = tmp.resolve("pt");
    // a slice of the demo corpus keeps the tokenization short
    Path corpus = tmp.resolve("songci-head.txt");
    Files.write(
        corpus, Files.readAllLines(repo.resolve("configs/demo/songci.txt")).subList(0, 600));
    List<String> args = new ArrayList<>(List.of("--mode", "pretrain"));
    args.addAll(tinyModel());
    args.addAll(
        List.of(
            "--train_files",
            corpus.toString(),
            "--validation_split_percentage",
            "5",
            "--max_train_samples",
            "300",
            "--per_device_train_batch_size",
            "4",
            "--do_train",
            "--output_dir",
            out.toString(),
            "--learning_rate",
            "3e-3",
            "--num_train_epochs",
            "1",
            "--max_steps",
            "2",
            "--block_size",
            "32",
            "--lr_scheduler_type",
            "cosine",
            "--warmup_steps",
            "1",
            "--logging_steps",
            "1",
            "--bf16",
            "false",
            "--preprocessing_num_workers",
            "10",
            "--set",
            "device=cpu"));
    Path log = tmp.resolve("pt.log");
    assertEquals(0, SftRunTest.run(log, args.toArray(String[]::new)), () -> read(log));
    JsonNode c = YAML.readTree(out.resolve("config.yaml").toFile());
    assertEquals(out.resolve("data").toString(), c.get("data_dir").asText());
    assertEquals(300, c.get("max_train_samples").asInt());
    assertEquals(2, SftRunTest.metrics(out, "train").size());
    assertTrue(Files.exists(out.resolve("model.safetensors")));
    String text = read(log);
    assertTrue(text.contains("note: --do_train has no effect here"), text);
  }

  @Test
  void theTranslatedRecipesLoadWithEveryKeyCommented() throws Exception {
    Path dir = TinyRun.repo().resolve("configs/llama2-chinese");
    List<Path> yamls;
    try (Stream<Path> s = Files.list(dir)) {
      yamls = s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
    }
    assertEquals(3, yamls.size(), yamls.toString());
    for (Path y : yamls) {
      PretrainConfig c = PretrainConfig.load(y, Map.of());
      assertEquals(0.999, c.adamBeta2(), y.toString()); // HF's, not Hanlin's
      assertEquals("linear", c.lrSchedulerType(), y.toString());
      for (String line : Files.readAllLines(y))
        if (line.matches("^\\s*[a-z_0-9]+:.*") && !line.trim().startsWith("#"))
          assertTrue(line.contains("#"), y.getFileName() + ": uncommented key: " + line);
    }
    PretrainConfig lora = PretrainConfig.load(dir.resolve("sft-lora.yaml"), Map.of());
    assertEquals(8, lora.lora().r());
    assertEquals(7, lora.lora().targetModules().size());
    assertEquals(4, lora.lora().baseBits()); // their finetune_lora.sh passes --load_in_bits 4
    HfFlags.Parsed ds =
        HfFlags.parse(List.of("--deepspeed", dir.resolve("ds_config_zero2.json").toString()));
    assertEquals(2, ds.keys().get("zero_stage"));
  }

  static String read(Path p) {
    try {
      return Files.readString(p);
    } catch (java.io.IOException e) {
      return e.toString();
    }
  }

  static int count(String text, String s) {
    int n = 0;
    for (int i = text.indexOf(s); i >= 0; i = text.indexOf(s, i + 1)) n++;
    return n;
  }
}
