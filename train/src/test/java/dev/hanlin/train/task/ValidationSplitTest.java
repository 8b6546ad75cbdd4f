package dev.hanlin.train.task;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Cursor;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.PretrainConfig;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A validation split that cannot be read stops an SFT run, naming the file and line, rather than
 * leaving the run without evaluation. (Pretraining's path, a corrupt validation shard, is
 * CorruptShardRunTest's.)
 */
class ValidationSplitTest {
  static Path repo() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent())
      if (Files.isDirectory(p.resolve("test-data").resolve("sft"))) return p;
    throw new IllegalStateException("no test-data above " + Path.of("").toAbsolutePath());
  }

  @Test
  void aBrokenSftValidationFileStopsTheRun(@TempDir Path tmp) throws Exception {
    Path repo = repo();
    Path bad = tmp.resolve("validation.jsonl");
    Files.writeString(
        bad, "{\"input\": \"q\", \"target\": \"a\"}\n{\"input\": \"q2\", \"target\": \n");
    Map<String, Object> keys = new HashMap<>();
    keys.put("tokenizer", repo.resolve("configs/demo/tokenizer.model").toString());
    keys.put("output_dir", tmp.resolve("out").toString());
    keys.put("model_config", repo.resolve("configs/demo/tiny-llama.json").toString());
    keys.put("train_files", List.of(repo.resolve("test-data/sft/lunyu_qa.jsonl").toString()));
    keys.put("validation_files", List.of(bad.toString()));
    keys.put(
        "sft",
        Map.of("format", "prompt_response", "prompt_field", "input", "response_field", "target"));
    PretrainConfig cfg = PretrainConfig.load(null, keys);
    Tokenizer tok = Tokenizer.load(Path.of(cfg.tokenizer()));
    PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
    try (Task task = Task.open(cfg, tok, Group.single(), quiet)) {
      Exception e =
          assertThrows(
              Exception.class, () -> task.loader(128, Group.single(), Device.CPU, Cursor.START));
      assertTrue(e.getMessage().contains("validation.jsonl"), e.getMessage());
    }
  }
}
