package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 13 item 1, as the fault-injection pass ran it: Meta's Llama 2 tokenizer, a prepared train
 * shard with every 50th token set to 31999 (a valid id) or 65535 (not below the vocabulary), then
 * {@code --mode pretrain}. The run must stop with an error naming the shard and the chunk before
 * any step, not train on the bad tokens nor die in libtorch.
 */
class CorruptShardRunTest {
  static Path config(Path tmp, Path data, Path out) throws IOException {
    Path tokenizer = TinyRun.repo().resolve("test-data/assets/tokenizer/tokenizer.model");
    assertTrue(Files.isRegularFile(tokenizer), "run test-data/tokenizer/setup.sh: " + tokenizer);
    Path text = tmp.resolve("songci.txt");
    if (!Files.exists(text)) {
      List<String> lines = Files.readAllLines(TinyRun.repo().resolve("configs/demo/songci.txt"));
      Files.write(text, lines.subList(0, Math.min(400, lines.size())));
    }
    return TinyRun.config(
        out,
        "vocab_size: 32000, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1,"
            + " num_attention_heads: 2, num_key_value_heads: 2",
        tokenizer,
        text,
        data,
        """
        max_steps: 2
        per_device_train_batch_size: 2
        learning_rate: 1.0e-3
        warmup_steps: 0
        eval_steps: 0
        save_steps: 1
        logging_steps: 1
        device: cpu
        """);
  }

  static int run(Path yaml, Path log) throws Exception {
    return TinyRun.finish(TinyRun.pretrain(yaml, log), log, 5);
  }

  @Test
  void flippedTokensStopTheRunNamingShardAndChunkBeforeAnyStep(@TempDir Path tmp) throws Exception {
    Path data = tmp.resolve("data");
    assertEquals(0, run(config(tmp, data, tmp.resolve("clean")), tmp.resolve("clean.log")));
    var manifest = new ObjectMapper().readTree(data.resolve("manifest.json").toFile());
    var train = manifest.get("sources").get(0).get("train").get(0);
    Path shard = data.resolve(train.get("file").asText());
    long tokens = train.get("tokens").asLong();
    byte[] original = Files.readAllBytes(shard);
    for (int id : new int[] {31999, 65535}) {
      Files.write(shard, original);
      try (RandomAccessFile f = new RandomAccessFile(shard.toFile(), "rw")) {
        for (long i = 0; i < tokens; i += 50) {
          f.seek(256 + 2 * i);
          f.write(id & 0xFF);
          f.write(id >>> 8);
        }
      }
      Path out = tmp.resolve("bad" + id);
      Path log = tmp.resolve("bad" + id + ".log");
      assertEquals(1, run(config(tmp, data, out), log));
      String text = Files.readString(log);
      assertTrue(text.contains("error: corrupt token shard " + shard), text);
      assertTrue(text.contains("data checksum mismatch in chunk 0"), text);
      if (id == 65535) assertTrue(text.contains("is 65535, not below the vocabulary size"), text);
      assertFalse(text.contains("index out of range"), text);
      assertFalse(text.contains("Exception raised from"), text); // a libtorch backtrace
      assertFalse(Files.exists(out.resolve("checkpoint-1")), "no step was taken");
      assertFalse(Files.exists(out.resolve("model.safetensors")), "nothing was exported");
    }
    Files.write(shard, original);

    // A validation shard with a damaged header stops the run too; it used to be dropped silently,
    // leaving a run without evaluation. (With train_files set, prepare would see the damage and
    // prepare the source again; a run over prepared data alone, without them, does not.)
    Path val =
        data.resolve(manifest.get("sources").get(0).get("validation").get(0).get("file").asText());
    try (RandomAccessFile f = new RandomAccessFile(val.toFile(), "rw")) {
      f.seek(16); // the token count
      int b = f.read();
      f.seek(16);
      f.write(b ^ 1);
    }
    Path log = tmp.resolve("badval.log");
    Path yaml = config(tmp, data, tmp.resolve("badval"));
    Files.writeString(yaml, Files.readString(yaml).replaceAll("(?m)^train_files: .*\n", ""));
    assertEquals(1, run(yaml, log));
    String text = Files.readString(log);
    assertTrue(text.contains("error: corrupt token shard " + val), text);
    assertTrue(text.contains("header checksum mismatch"), text);
  }
}
