package dev.hanlin.cli;

import static dev.hanlin.cli.DistributedRunTest.freePort;
import static dev.hanlin.cli.DistributedRunTest.losses;
import static dev.hanlin.cli.DistributedRunTest.maxDifference;
import static dev.hanlin.cli.DistributedRunTest.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.model.PeftAdapter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LoRA with {@code zero_stage: 3} on the CPU with Gloo, every rank a child JVM started by
 * bin/launch ({@code --mode sft}): the frozen base is sharded unit by unit and gathered around each
 * block, the adapters and modules to save stay replicated with their gradients averaged. One
 * process is the unsharded LoRA run bit for bit (losses, checkpoint and PEFT export); 2 and 3
 * processes (with accumulation, packing, a tied head, saved embed_tokens and lm_head) give its
 * losses over the same global batch of 6 samples (54 training samples: 9 whole steps an epoch)
 * within 1e-5; a ZeRO-3 LoRA checkpoint resumes on another world size, and under zero_stage 0. The
 * default suite runs 1 and 2 processes; the rest is tagged slow.
 */
class Zero3LoraRunTest {
  static final int STEPS = 12;
  static final String ZERO3 = "zero_stage: 3\n";
  static final String LORA =
      "lora: {r: 4, lora_alpha: 8, lora_dropout: 0.0, target_modules: [q_proj, v_proj, up_proj,"
          + " down_proj], modules_to_save: [%s]}\n";
  @TempDir static Path shared;
  static Path reference;

  /**
   * An SFT LoRA run of the tiny fresh model ({@code model} adds to its config_overrides) on the
   * Analects Q&A records: {@code batch} samples a rank, {@code accumulation} micro-batches a step,
   * {@link #STEPS} steps, saved every 6, recomputing backward; then {@code extra}.
   */
  static Path config(Path dir, String model, int batch, int accumulation, String extra)
      throws IOException {
    Path repo = TinyRun.repo();
    String yaml =
        """
        model_config: %s
        config_overrides: {%s%s}
        tokenizer: %s
        output_dir: %s
        train_files: [%s]
        validation_split_percentage: 3.5
        block_size: 64
        max_steps: %d
        save_steps: 6
        per_device_train_batch_size: %d
        per_device_eval_batch_size: 2
        gradient_accumulation_steps: %d
        learning_rate: 3.0e-3
        warmup_steps: 1
        logging_steps: 1
        device: cpu
        gradient_checkpointing: true
        dist_timeout_seconds: 30
        %s"""
            .formatted(
                repo.resolve("configs/demo/tiny-llama.json"),
                TinyRun.SMALL,
                model,
                repo.resolve("configs/demo/tokenizer.model"),
                dir,
                repo.resolve("test-data/sft/lunyu_qa.jsonl"),
                STEPS,
                batch,
                accumulation,
                extra);
    Path f = dir.resolveSibling(dir.getFileName() + ".yaml");
    Files.writeString(f, yaml);
    return f;
  }

  /** The default LoRA keys: q/v/up/down adapters, lm_head saved (trained whole). */
  static String lora(String extra) {
    return LORA.formatted("lm_head") + "sft: {format: prompt_response}\n" + extra;
  }

  /** {@code bin/launch --nproc-per-node n -- --mode sft --config yaml}; it must exit 0. */
  static void run(int n, Path yaml, Path log) throws Exception {
    run(n, yaml, log, Map.of());
  }

  /** {@link #run(int, Path, Path)} with {@code env} added to the ranks' environment. */
  static void run(int n, Path yaml, Path log, Map<String, String> env) throws Exception {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "bash",
                TinyRun.repo() + "/bin/launch",
                "--nproc-per-node",
                "" + n,
                "--master-port",
                "" + freePort(),
                "--",
                "--mode",
                "sft",
                "--config",
                yaml.toString()));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
    pb.environment().put("HANLIN_CLASSPATH", System.getProperty("java.class.path"));
    pb.environment().put("HANLIN_LAUNCH_GRACE", "3");
    pb.environment().keySet().removeIf(k -> k.startsWith("SLURM_"));
    pb.environment().putAll(env);
    Process p =
        pb.redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .start();
    assertTrue(p.waitFor(4, TimeUnit.MINUTES), () -> "did not finish: " + read(log));
    assertEquals(0, p.exitValue(), () -> read(log));
  }

  @BeforeAll
  static void unshardedReference() throws Exception {
    reference = shared.resolve("plain");
    Path log = shared.resolve("plain.log");
    run(1, config(reference, "", 6, 1, lora("")), log);
    assertEquals(STEPS, losses(reference).size());
    // 54 = 9 steps of 6: no epoch drops a partial batch, whatever the micro-batch layout (the
    // sampler drops an epoch's last partial micro-batch, which depends on the layout)
    assertTrue(read(log).contains("54 training and 2 validation"), () -> read(log));
  }

  /** {@code out}'s losses are {@code want}'s from step {@code from} on, within {@code tol}. */
  static void assertLosses(Path want, Path out, int from, double tol) throws IOException {
    List<Double> a = losses(want), b = losses(out);
    assertEquals(a.size(), b.size(), "steps");
    for (int i = from; i < a.size(); i++)
      assertEquals(a.get(i), b.get(i), tol, "loss at step " + (i + 1) + " of " + out);
  }

  /** A LoRA checkpoint: the adapter and the whole optimizer state, as a one-process run's. */
  static void assertAdapterCheckpoint(Path ck) {
    for (String f :
        List.of(PeftAdapter.WEIGHTS, PeftAdapter.CONFIG, "optimizer.safetensors", "config.yaml"))
      assertTrue(Files.exists(ck.resolve(f)), ck + " lacks " + f);
    assertFalse(Files.exists(ck.resolve("zero3-layout.json")), "the base is not checkpointed");
  }

  /**
   * One ZeRO-3 process shards and gathers the base but computes exactly what the plain run does.
   */
  @Test
  void oneProcessIsThePlainLoraRunBitForBit(@TempDir Path tmp) throws Exception {
    Path one = tmp.resolve("one"), log = tmp.resolve("one.log");
    run(1, config(one, "", 6, 1, lora(ZERO3)), log);
    assertTrue(read(log).contains("zero_stage 3 with LoRA"), () -> read(log));
    assertEquals(losses(reference), losses(one));
    for (String f : List.of(PeftAdapter.WEIGHTS, PeftAdapter.CONFIG))
      assertArrayEquals(
          Files.readAllBytes(reference.resolve(f)), Files.readAllBytes(one.resolve(f)), f);
    assertAdapterCheckpoint(one.resolve("checkpoint-6"));
    assertArrayEquals(
        Files.readAllBytes(reference.resolve("checkpoint-6/optimizer.safetensors")),
        Files.readAllBytes(one.resolve("checkpoint-6/optimizer.safetensors")));
    assertEquals(
        DistributedRunTest.trainMetric(reference, "grad_norm"),
        DistributedRunTest.trainMetric(one, "grad_norm"));
  }

  /**
   * Two ZeRO-3 processes of 1 sample, 3 accumulated micro-batches a step, give the plain run of 6
   * samples; their checkpoint is a plain LoRA checkpoint and resumes on one ZeRO-3 process.
   */
  @Test
  void twoProcessesWithAccumulationGiveTheRunOfOneAndResumeOnOne(@TempDir Path tmp)
      throws Exception {
    Path two = tmp.resolve("two");
    run(2, config(two, "", 1, 3, lora(ZERO3)), tmp.resolve("two.log"));
    assertLosses(reference, two, 0, 1e-5);
    assertAdapterCheckpoint(two.resolve("checkpoint-6"));
    double d =
        maxDifference(reference.resolve(PeftAdapter.WEIGHTS), two.resolve(PeftAdapter.WEIGHTS));
    assertTrue(d < 1e-5, "adapter export differs by " + d);
    assertArrayEquals(
        Files.readAllBytes(reference.resolve(PeftAdapter.CONFIG)),
        Files.readAllBytes(two.resolve(PeftAdapter.CONFIG)));
    Path one = tmp.resolve("one");
    String from = "resume_from_checkpoint: " + two.resolve("checkpoint-6") + "\n";
    run(1, config(one, "", 6, 1, lora(ZERO3 + from)), tmp.resolve("one.log"));
    assertTrue(read(tmp.resolve("one.log")).contains("resuming from"));
    assertLosses(reference, one, 6, 1e-5);
  }

  /**
   * Gathering the next stage's base units ahead (the default) moves no number: two ranks with
   * accumulation give the same losses, checkpoint optimizer state and PEFT export, bit for bit, as
   * with the prefetch off ({@code HANLIN_ZERO3_PREFETCH=0}).
   */
  @Test
  @Tag("slow")
  void prefetchingTheBaseAheadChangesNoNumber(@TempDir Path tmp) throws Exception {
    Path on = tmp.resolve("on"), off = tmp.resolve("off");
    run(2, config(on, "", 1, 3, lora(ZERO3)), tmp.resolve("on.log"));
    run(
        2,
        config(off, "", 1, 3, lora(ZERO3)),
        tmp.resolve("off.log"),
        Map.of("HANLIN_ZERO3_PREFETCH", "0"));
    assertEquals(STEPS, losses(on).size());
    assertEquals(losses(off), losses(on));
    for (String f :
        List.of(PeftAdapter.WEIGHTS, PeftAdapter.CONFIG, "checkpoint-6/optimizer.safetensors"))
      assertArrayEquals(Files.readAllBytes(off.resolve(f)), Files.readAllBytes(on.resolve(f)), f);
  }

  /**
   * The Llama2-Chinese path (embed_tokens and lm_head saved, so only the blocks and the final norm
   * are sharded) with packed rows on 3 processes; its checkpoint resumes on 2 processes without
   * ZeRO (DDP), and the plain run's under ZeRO-3 on 2.
   */
  @Test
  @Tag("slow")
  void threeProcessesWithSavedEmbeddingsAndPackingResumeAcrossStages(@TempDir Path tmp)
      throws Exception {
    String keys =
        LORA.formatted("embed_tokens, lm_head") + "sft: {format: prompt_response, packing: true}\n";
    Path ref = tmp.resolve("ref"), three = tmp.resolve("three");
    run(1, config(ref, "", 6, 1, keys), tmp.resolve("ref.log"));
    run(3, config(three, "", 2, 1, keys + ZERO3), tmp.resolve("three.log"));
    assertLosses(ref, three, 0, 1e-5);
    assertAdapterCheckpoint(three.resolve("checkpoint-6"));
    Path ddp = tmp.resolve("ddp");
    String from3 = "resume_from_checkpoint: " + three.resolve("checkpoint-6") + "\n";
    run(2, config(ddp, "", 3, 1, keys + from3), tmp.resolve("ddp.log"));
    assertLosses(ref, ddp, 6, 1e-5);
    Path back = tmp.resolve("back");
    String fromRef = "resume_from_checkpoint: " + ref.resolve("checkpoint-6") + "\n";
    run(2, config(back, "", 3, 1, keys + ZERO3 + fromRef), tmp.resolve("back.log"));
    assertLosses(ref, back, 6, 1e-5);
    double d = maxDifference(ref.resolve(PeftAdapter.WEIGHTS), back.resolve(PeftAdapter.WEIGHTS));
    assertTrue(d < 1e-5, "adapter export differs by " + d);
  }

  /**
   * A tied head (its stage gathers the embedding's unit too), nothing saved, 3 processes with 2
   * accumulated micro-batches of 1 sample.
   */
  @Test
  @Tag("slow")
  void aTiedHeadOnThreeProcessesGivesTheRunOfOne(@TempDir Path tmp) throws Exception {
    String tied = ", tie_word_embeddings: true";
    String keys =
        "lora: {r: 4, lora_alpha: 8, lora_dropout: 0.0, target_modules: [q_proj, k_proj, o_proj, gate_proj]}\n"
            + "sft: {format: prompt_response}\n";
    Path ref = tmp.resolve("ref"), three = tmp.resolve("three");
    run(1, config(ref, tied, 6, 1, keys), tmp.resolve("ref.log"));
    run(3, config(three, tied, 1, 2, keys + ZERO3), tmp.resolve("three.log"));
    assertLosses(ref, three, 0, 1e-5);
  }
}
