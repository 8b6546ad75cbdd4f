package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --mode memory}: the plan of a Llama-2-7B config printed without training (no weights
 * exist), with the flags and {@code --world} of a user deciding how to run it.
 */
class MemoryCommandTest {
  @TempDir Path tmp;

  @Test
  void printsThePlanOfA7bConfigWithoutWeights() throws Exception {
    Path repo = TinyRun.repo();
    Path yaml =
        Files.writeString(
            tmp.resolve("7b.yaml"),
            """
            model_config: %s
            tokenizer: %s
            train_files: [none.jsonl]
            block_size: 2048
            sft: {format: text}
            output_dir: %s
            per_device_train_batch_size: 1
            gradient_checkpointing: true
            bf16: true
            """
                .formatted(
                    repo.resolve("bench/llama2-7b.json"),
                    repo.resolve("configs/demo/tokenizer.model"),
                    tmp.resolve("out")));
    var r =
        EvalCommandTest.cli(
            "--mode", "memory", "--config", yaml.toString(), "--offload_optimizer", "cpu");
    assertEquals(0, r.code(), r.err());
    // 4 bytes/parameter on the GPU (6.74 B), 12 on the host; activations and logits 1.69 GiB
    assertTrue(r.out().contains("6.74B parameters, offload, zero_stage 0 of 1 rank"), r.out());
    assertTrue(r.out().matches("(?s).*  total +26\\.80 GiB.*"), r.out());
    assertTrue(r.out().contains("75.31 GiB (pinned host memory, per rank)"), r.out());
    assertTrue(Files.notExists(tmp.resolve("out")), "nothing written");

    var eight =
        EvalCommandTest.cli(
            "--mode",
            "memory",
            "--config",
            yaml.toString(),
            "--world",
            "8",
            "--set",
            "zero_stage=2");
    assertEquals(0, eight.code(), eight.err());
    assertTrue(eight.out().contains("zero_stage 2 of 8 ranks"), eight.out());
    assertTrue(
        eight.out().matches("(?s).*zero_stage 3 +12\\.55 GiB +1\\.69 GiB +15\\.38 GiB.*"),
        eight.out());
  }
}
