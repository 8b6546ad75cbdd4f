package dev.hanlin.train.hooks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.model.LlamaConfig;
import dev.hanlin.train.hooks.MemoryPlan.Kind;
import dev.hanlin.train.hooks.MemoryPlan.Setup;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The memory plan against numbers computed by hand: the ZeRO paper's worked example (7.5B
 * parameters on 64 GPUs: 120, 31.4, 16.6 and 1.9 GB of model states for stages 0 to 3) and the
 * Llama-2-7B shape of bench/llama2-7b.json at seq 2048.
 */
class MemoryPlanTest {
  static final long N7B = 6_738_415_616L; // 32 x 202,383,360 + 2 x 32000 x 4096 + 4096

  static LlamaConfig llama7b() throws Exception {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent())
      if (Files.exists(p.resolve("bench/llama2-7b.json")))
        return LlamaConfig.read(p.resolve("bench/llama2-7b.json"));
    throw new IllegalStateException("bench/llama2-7b.json not found");
  }

  @Test
  void modelStatesAreTheZeroPapersTable1() {
    long psi = 7_500_000_000L;
    double[] paperGb = {120, 31.4, 16.6, 1.9}; // Figure 1 / Table 1, K = 12, N_d = 64
    for (int stage = 0; stage <= 3; stage++) {
      double gb = MemoryPlan.states(psi, Kind.MASTER_WEIGHTS, stage, 64).gpu() / 1e9;
      assertEquals(paperGb[stage], gb, 0.05, "stage " + stage);
    }
  }

  @Test
  void llama2SevenBFullTrainingByHand() throws Exception {
    LlamaConfig c = llama7b();
    assertEquals(N7B, c.parameterCount());
    // bf16 weights 2 + bf16 gradients 2 + fp32 masters 4 + AdamW 4 + 4 bytes per parameter
    Setup one = new Setup(Kind.MASTER_WEIGHTS, 0, 1, 1, 2048, true, 0);
    MemoryPlan p = MemoryPlan.of(c, one);
    assertEquals(2 * N7B, p.weights());
    assertEquals(2 * N7B, p.gradients());
    assertEquals(4 * N7B, p.masters());
    assertEquals(8 * N7B, p.optimizer());
    assertEquals(16 * N7B, p.modelStates());
    // activations, B = 1, T = 2048, D = 4096, F = 11008, 32 heads, bf16 (a = 2):
    // one block 2*2048*(7*4096 + 2*4096 + 4*11008) + 4*32*2048 = 331,612,160;
    // checkpointed: 32 block inputs 32*2*2048*4096 = 536,870,912, the head 2*2*2048*4096
    long block = 331_612_160L, inputs = 536_870_912L, head = 33_554_432L;
    assertEquals(inputs + block + head, p.activations());
    // logits 2048 x 32000 x (2 bf16 + 4 fp32 copy + 4 log-softmax + 4 gradient)
    assertEquals(2048L * 32000 * 14, p.logits());
    // without checkpointing every block's, plus the embedding's output 2*2048*4096
    MemoryPlan full = MemoryPlan.of(c, new Setup(Kind.MASTER_WEIGHTS, 0, 1, 1, 2048, false, 0));
    assertEquals(32 * block + head + 16_777_216L, full.activations());

    // offload: only bf16 weights and gradients on the GPU, 12 bytes/parameter on the host
    MemoryPlan off = MemoryPlan.of(c, new Setup(Kind.OFFLOAD, 0, 1, 1, 2048, true, 0));
    assertEquals(4 * N7B, off.modelStates());
    assertEquals(12 * N7B, off.hostStates());
    assertTrue(off.total() < 80e9, "7B full SFT with offload fits one 80 GB GPU: " + off.total());
    assertTrue(p.total() > 80e9, "and does not without it");

    // ZeRO on 8 ranks: 2 + 2 + 12/8; 2 + 14/8; 16/8 bytes per parameter
    assertEquals(
        2 * N7B + 2 * N7B + 12 * N7B / 8, MemoryPlan.states(N7B, Kind.MASTER_WEIGHTS, 1, 8).gpu());
    assertEquals(2 * N7B + 14 * N7B / 8, MemoryPlan.states(N7B, Kind.MASTER_WEIGHTS, 2, 8).gpu());
    assertEquals(16 * N7B / 8, MemoryPlan.states(N7B, Kind.MASTER_WEIGHTS, 3, 8).gpu());
    // ZeRO-2 with offload on 2 ranks: each rank's host holds half of the 12 bytes
    assertEquals(6 * N7B, MemoryPlan.states(N7B, Kind.OFFLOAD, 2, 2).host());
    // fp32: 4 + 4 + 8, no masters
    assertEquals(16 * N7B, MemoryPlan.states(N7B, Kind.FP32, 0, 1).gpu());
    assertEquals(0, MemoryPlan.states(N7B, Kind.FP32, 0, 1).masters());

    // ZeRO-3's gathers: two blocks' bf16 parameters (the embedding, 32000 x 4096, is smaller
    // than two blocks of 202,383,360), and one block's bf16 gradients before reduce-scatter
    MemoryPlan z3 = MemoryPlan.of(c, new Setup(Kind.MASTER_WEIGHTS, 3, 8, 1, 2048, true, 0));
    long blockParams = 202_383_360L;
    assertEquals(2 * 2 * blockParams + 2 * blockParams, z3.commBuffers());
  }

  @Test
  void theTableNamesEveryPart() throws Exception {
    String t = MemoryPlan.of(llama7b(), new Setup(Kind.OFFLOAD, 2, 2, 1, 2048, true, 0)).render();
    for (String part :
        new String[] {
          "weights", "gradients", "fp32 master", "AdamW", "activations", "logits", "total", "host"
        }) assertTrue(t.contains(part), part + " in\n" + t);
    String cmp =
        MemoryPlan.compare(llama7b(), new Setup(Kind.MASTER_WEIGHTS, 0, 8, 1, 2048, true, 0));
    assertTrue(cmp.contains("zero_stage 3") && cmp.contains("zero_stage 2 + offload"), cmp);
  }
}
