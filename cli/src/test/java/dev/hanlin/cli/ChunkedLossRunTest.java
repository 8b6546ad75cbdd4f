package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whole CPU runs with {@code loss_chunk_tokens} against the same runs with the whole logits: 20
 * pretraining steps (accumulated, both backwards), packed SFT, and data parallelism on two
 * processes (whose gradient reducer must see each weight's gradient once per micro-batch) track the
 * unchunked losses and evaluation within 1e-5.
 */
@Tag("slow")
class ChunkedLossRunTest {
  @TempDir static Path shared;
  static Path data, whole;

  /**
   * 20 steps of 2 micro-batches of {@code batch} blocks of 32 a rank, evaluated at steps 10 and 20.
   */
  static Path config(Path out, int batch, String extra) throws IOException {
    return TinyRun.small(
        out,
        data,
        20,
        batch,
        """
        per_device_eval_batch_size: 4
        gradient_accumulation_steps: 2
        learning_rate: 3.0e-3
        warmup_steps: 3
        eval_steps: 10
        max_eval_batches: 2
        save_steps: 0
        logging_steps: 1
        device: cpu
        %s
        """
            .formatted(extra));
  }

  static void run(Path yaml, Path log) throws Exception {
    int code = TinyRun.finish(TinyRun.pretrain(yaml, log), log, 5);
    assertEquals(0, code, () -> DistributedRunTest.read(log));
  }

  @BeforeAll
  static void wholeLogits() throws Exception {
    data = shared.resolve("data");
    whole = shared.resolve("whole");
    run(config(whole, 4, "loss_chunk_tokens: 0"), shared.resolve("whole.log"));
  }

  /** The train losses and the eval losses of two runs agree to 1e-5, step by step. */
  static void assertTracks(Path expected, Path actual) throws IOException {
    for (String type : List.of("train", "eval")) {
      List<JsonNode> x = SftRunTest.metrics(expected, type), y = SftRunTest.metrics(actual, type);
      assertEquals(x.size(), y.size(), type + " records");
      assertTrue(!x.isEmpty(), type + " records exist");
      for (int i = 0; i < x.size(); i++)
        assertEquals(
            x.get(i).get("loss").asDouble(),
            y.get(i).get("loss").asDouble(),
            1e-5,
            type + " loss at step " + x.get(i).get("step"));
    }
  }

  @Test
  void pretrainingInChunksOf64TracksTheWholeLogits(@TempDir Path tmp) throws Exception {
    Path chunked = tmp.resolve("chunked");
    run(config(chunked, 4, "loss_chunk_tokens: 64"), tmp.resolve("chunked.log"));
    assertTracks(whole, chunked);
    Path recomputed = tmp.resolve("recomputed");
    run(
        config(recomputed, 4, "loss_chunk_tokens: 48\ngradient_checkpointing: true"),
        tmp.resolve("recomputed.log"));
    assertTracks(whole, recomputed);
  }

  @Test
  void twoProcessesInChunksTrackOneWithTheWholeLogits(@TempDir Path tmp) throws Exception {
    // the same global batch: 2 ranks × 2 blocks × 2 micro-batches = 1 rank × 4 × 2
    Path two = tmp.resolve("two"), log = tmp.resolve("two.log");
    Path yaml = config(two, 2, "loss_chunk_tokens: 48");
    Process p =
        DistributedRunTest.launch(
            yaml,
            log,
            "--nproc-per-node",
            "2",
            "--master-port",
            "" + DistributedRunTest.freePort());
    assertEquals(0, DistributedRunTest.finish(p, log), () -> DistributedRunTest.read(log));
    List<Double> a = DistributedRunTest.losses(whole), b = DistributedRunTest.losses(two);
    DistributedRunTest.assertLossesMatch(a, b, 0);
  }

  @Test
  void packedSftInChunksTracksTheWholeLogits(@TempDir Path tmp) throws Exception {
    String body =
        """
        train_files: [$REPO/test-data/sft/lunyu_qa.jsonl]
        validation_split_percentage: 10
        block_size: 64
        max_steps: 8
        eval_steps: 4
        sft: {format: prompt_response, packing: true}
        """;
    Path a = tmp.resolve("a"), b = tmp.resolve("b");
    for (Path out : List.of(a, b)) {
      String chunk = out == a ? "loss_chunk_tokens: 0\n" : "loss_chunk_tokens: 100\n";
      Path yaml = SftRunTest.yaml(out, body + chunk);
      assertEquals(
          0,
          SftRunTest.run(
              tmp.resolve(out.getFileName() + ".log"),
              "--mode",
              "sft",
              "--config",
              yaml.toString()));
    }
    assertTracks(a, b);
  }
}
