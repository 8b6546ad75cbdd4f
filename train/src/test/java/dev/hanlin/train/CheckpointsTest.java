package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Cursor;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
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

/** A save that fails half way leaves no folder behind and the earlier checkpoints intact. */
class CheckpointsTest {
  static LlamaModel tiny() {
    LlamaConfig c =
        new LlamaConfig(
            64,
            16,
            32,
            1,
            2,
            1,
            8,
            1e-5,
            10000,
            null,
            64,
            false,
            0.02,
            1,
            List.of(2),
            null,
            DType.F32,
            false,
            false);
    return LlamaModel.init(c, 1, DType.F32, Device.CPU);
  }

  @Test
  void failedSaveKeepsThePreviousCheckpoint(@TempDir Path out) throws Exception {
    LlamaModel m = tiny();
    Tensor rng = Torch.cpuRngState().retain();
    Map<String, Tensor> opt = new LinkedHashMap<>();
    opt.put("exp_avg.x", Torch.zeros(DType.F32, Device.CPU, 3).retain());
    Path first =
        Checkpoints.save(
            out, m, opt, rng, new TrainerState(4, new Cursor(0, 16), 0, 64, 1), "a: 1\n");
    assertEquals(List.of(first), Checkpoints.list(out));

    Tensor broken = Torch.zeros(DType.F32, Device.CPU, 3);
    broken.close(); // writing it fails in the middle of the save, like a full disk would
    Map<String, Tensor> bad = new LinkedHashMap<>(opt);
    bad.put("exp_avg.y", broken);
    var e =
        assertThrows(
            IOException.class,
            () ->
                Checkpoints.save(
                    out, m, bad, rng, new TrainerState(8, new Cursor(0, 32), 0, 128, 1), "a: 1\n"));
    assertTrue(
        e.getMessage().contains("checkpoint-8")
            && e.getMessage().contains("earlier checkpoints are intact"),
        e.getMessage());
    assertFalse(Files.exists(out.resolve("checkpoint-8")));
    assertFalse(Files.exists(out.resolve(".checkpoint-8.tmp")));
    assertEquals(List.of(first), Checkpoints.list(out));
    Checkpoints.Loaded back = Checkpoints.load(first, DType.F32, Device.CPU);
    assertEquals(new Cursor(0, 16), back.state().cursor());
    assertEquals(4, back.state().step());
  }

  @Test
  void pruneKeepsTheNewestAndIgnoresIncompleteFolders(@TempDir Path out) throws Exception {
    LlamaModel m = tiny();
    Tensor rng = Torch.cpuRngState().retain();
    for (int s : new int[] {2, 4, 6})
      Checkpoints.save(out, m, Map.of(), rng, new TrainerState(s, Cursor.START, 0, 0, 1), "");
    Files.createDirectories(out.resolve("checkpoint-9")); // no trainer_state.json: incomplete
    assertEquals(6, Checkpoints.stepOf(Checkpoints.latest(out).orElseThrow()));
    Checkpoints.prune(out, 2);
    assertEquals(
        List.of(out.resolve("checkpoint-4"), out.resolve("checkpoint-6")), Checkpoints.list(out));
  }
}
