package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * How a run starts and what it leaves, in parts: a damaged checkpoint is named with the one to
 * resume from instead, overwrite_output_dir knows exactly which files are the run's, and
 * config_overrides is refused where it would be ignored.
 */
class RunLifecycleTest {

  @Test
  void truncatedTrainerStateNamesTheFileAndTheCheckpointBefore(@TempDir Path out) throws Exception {
    var m = CheckpointsTest.tiny();
    Map<String, Tensor> rng = Map.of("cpu", Torch.cpuRngState().retain());
    for (long step : List.of(1L, 2L))
      Checkpoints.save(
          out, m, Map.of(), rng, new TrainerState(step, dev.hanlin.data.Cursor.START, 0, 0, 1), "");
    Path state = out.resolve("checkpoint-2/trainer_state.json");
    String text = Files.readString(state);
    Files.writeString(state, text.substring(0, text.length() / 2));
    IOException e =
        assertThrows(
            IOException.class,
            () -> Checkpoints.load(out.resolve("checkpoint-2"), DType.F32, Device.CPU));
    assertTrue(e.getMessage().contains(state.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("is damaged"), e.getMessage());
    assertTrue(
        e.getMessage().contains("--resume-from " + out.toAbsolutePath().resolve("checkpoint-1")),
        e.getMessage());
    // the one before still loads
    assertEquals(
        1, Checkpoints.load(out.resolve("checkpoint-1"), DType.F32, Device.CPU).state().step());
  }

  @Test
  void overwriteRemovesTheRunsFilesAndNothingElse(@TempDir Path out) throws Exception {
    List<String> runs =
        List.of(
            "checkpoint-4/model.safetensors",
            ".checkpoint-6.tmp/model.safetensors",
            "config.yaml",
            "metrics.jsonl",
            "loss.png",
            "runs/events.out.tfevents.1700000000.host",
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "model-00001-of-00002.safetensors",
            "model.safetensors.index.json",
            "adapter_config.json",
            "adapter_model.safetensors",
            "tokenizer.model",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json");
    List<String> users =
        List.of("notes.txt", "data/manifest.json", "inputs/demo/songci.txt", "runs/my-notes.txt");
    for (String f : runs) write(out.resolve(f));
    for (String f : users) write(out.resolve(f));
    assertEquals(runs.size(), RunOutputs.clear(out)); // a checkpoint counts as one
    for (String f : runs) assertTrue(Files.notExists(out.resolve(f)), f);
    for (String f : users) assertTrue(Files.exists(out.resolve(f)), f);
  }

  private static void write(Path f) throws IOException {
    Files.createDirectories(f.getParent());
    Files.writeString(f, "x");
  }

  @Test
  void configOverridesWithAModelFolderIsAnErrorNamingTheKey() {
    Map<String, Object> o = new LinkedHashMap<>();
    o.put("model_name_or_path", "some/model");
    o.put("config_overrides", Map.of("num_hidden_layers", 2));
    o.put("tokenizer", "t.model");
    o.put("output_dir", "out");
    o.put("data_dir", "data");
    var e = assertThrows(RuntimeException.class, () -> PretrainConfig.load(null, o));
    assertTrue(
        e.getMessage().contains("'config_overrides' can't be used with 'model_name_or_path'"),
        e.getMessage());
    assertTrue(e.getMessage().contains("num_hidden_layers"), e.getMessage());
    o.put("config_overrides", Map.of()); // empty is fine
    assertEquals("some/model", PretrainConfig.load(null, o).modelNameOrPath());
  }
}
