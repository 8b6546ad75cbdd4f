package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.LabelledBatch;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * What the chunked loss is for, measured: the process's peak resident memory (Linux's VmHWM, where
 * libtorch's CPU tensors live) grows by less than half of one (N, V) fp32 logits tensor during a
 * chunked forward and backward, and by more than a whole one with the whole logits, on a model
 * whose logits dwarf everything else (vocabulary 32000, hidden size 64, 4096 rows: 524 MB of fp32
 * logits, against 8 MB of lm_head). A class of its own, so that its JVM's memory is this test's
 * alone. Seen on 2 cores: a chunked step 47 MB, the whole logits 1906 MB (about four logits
 * tensors: the logits, their log-softmax and two gradients); with 2048 rows, chunked 46 to 167 MB
 * over several runs (thread pools and the allocator's arenas), whole 999 MB.
 */
@Tag("slow") // ~90 s on 2 busy cores: the whole logits' GEMMs and softmax over 131 M elements
class LossHeadMemoryTest {
  static final int V = 32000, B = 8, T = 512;
  static final long LOGITS_BYTES = (long) B * T * V * 4;

  @Test
  void chunksKeepThePeakBelowHalfOfOneLogitsTensorAndTheWholeLogitsDoNot() {
    assumeTrue(
        Files.isWritable(Path.of("/proc/self/clear_refs")), "needs Linux's /proc/self/clear_refs");
    LlamaConfig c =
        new LlamaConfig(
            V,
            64,
            128,
            1,
            2,
            1,
            32,
            1e-5,
            10000,
            null,
            T,
            false,
            0.02,
            1,
            List.of(2),
            null,
            DType.F32,
            false,
            false);
    LlamaModel m = LlamaModel.init(c, 1, DType.F32, Device.CPU);
    for (Tensor w : m.weights().values()) w.requiresGrad(true);
    // warm up (the first step of a size also grows thread pools' and BLAS's buffers, ~150 MB
    // here): then the measured step reuses what the allocator kept of the last one's chunks, as
    // a training loop does, but cannot hide a logits-sized tensor, which glibc always maps afresh
    // (blocks above 32 MB) and which raises the peak by its size
    step(m, B, 64);
    long chunked = peakGrowth(() -> step(m, B, 64));
    long whole = peakGrowth(() -> step(m, B, 0));
    String figures =
        "peak growth during a step: chunked %d MB, whole logits %d MB; one logits tensor %d MB"
            .formatted(chunked >> 20, whole >> 20, LOGITS_BYTES >> 20);
    System.out.println(figures);
    assertTrue(chunked < LOGITS_BYTES / 2, figures);
    assertTrue(whole > LOGITS_BYTES, "the measure sees the whole logits: " + figures);
  }

  /** One forward and backward of {@code rows} rows of T random tokens, gradients dropped after. */
  static void step(LlamaModel m, int rows, long chunk) {
    Random r = new Random(rows);
    long[] ids = new long[rows * T], targets = new long[rows * T];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = r.nextInt(V);
      targets[i] = r.nextInt(V);
    }
    try (Scope s = Scope.open()) {
      LabelledBatch b =
          new LabelledBatch(
              Torch.fromLongs(ids, rows, T),
              Torch.fromLongs(targets, rows, T),
              ids.length,
              Cursor.START,
              null);
      Backward.PLAIN.run(m, b, new LossHead(b.targets().reshape(-1), chunk), ids.length, null);
    }
    for (Tensor w : m.weights().values()) w.clearGrad();
  }

  /**
   * How far the resident set rose above where it stood while {@code r} ran: Linux resets the peak
   * (VmHWM) to the current size when 5 is written to clear_refs.
   */
  static long peakGrowth(Runnable r) {
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
      long before = status("VmRSS:");
      r.run();
      return status("VmHWM:") - before;
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** A size line of /proc/self/status, in bytes. */
  static long status(String key) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/self/status")))
      if (line.startsWith(key)) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024; // kB
    throw new IllegalStateException("no " + key + " in /proc/self/status");
  }
}
