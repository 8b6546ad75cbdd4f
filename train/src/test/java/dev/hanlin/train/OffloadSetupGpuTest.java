package dev.hanlin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Cuda;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.train.precision.OffloadedMasters;
import java.io.PrintStream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Offload's setup on CUDA: the float32 model is built in host memory ({@code buildOn}), and adopt
 * puts only its bf16 weights on the device, one tensor at a time: the device's peak while adopting
 * is the bf16 model's bytes (each tensor rounded up to the allocator's 512-byte blocks), not the
 * float32 model's (before, the fp32 random init sat on the GPU beside its bf16 copy: 37.65 GiB at
 * 7B against a 26.80 GiB plan). The masters are the float32 values, pinned on the host.
 */
@Tag("gpu")
class OffloadSetupGpuTest {
  @Test
  void theDeviceHoldsOnlyTheBf16WeightsAtSetup() throws Exception {
    Assumptions.assumeTrue(Torch.cudaAvailable(), "no CUDA");
    Device cuda = Device.cuda(0);
    OffloadedMasters p = new OffloadedMasters(true, cuda);
    assertEquals(Device.CPU, p.buildOn(cuda), "the fp32 model is built on the host");
    LlamaModel fp32 =
        HfCheckpoint.load(TestData.dir("parity").resolve("gqa"), DType.F32, p.buildOn(cuda));
    long bf16Bytes = 0;
    for (Tensor w : fp32.weights().values()) bf16Bytes += (w.numel() * 2 + 511) / 512 * 512;
    float[] first = fp32.weights().values().iterator().next().toFloatArray();
    // the caching allocator's stats exist once it has served a tensor: one, freed before the reset
    Torch.zeros(DType.F32, cuda, 1).close();
    Torch.synchronize();
    Cuda.resetPeak(0);
    LlamaModel m = p.adopt(fp32, new PrintStream(PrintStream.nullOutputStream()));
    Torch.synchronize();
    long peak = Cuda.peakAllocatedBytes(0);
    System.out.printf(
        "offload setup: device peak %d bytes while adopting, bf16 model %d bytes%n",
        peak, bf16Bytes);
    assertTrue(peak <= bf16Bytes, peak + " > " + bf16Bytes);
    for (Tensor w : m.weights().values()) {
      assertEquals(DType.BF16, w.dtype());
      assertTrue(w.device().isCuda());
    }
    Tensor master = p.optimizerParams(m.weights()).values().iterator().next();
    assertEquals(DType.F32, master.dtype());
    assertTrue(master.isPinned(), "the masters are pinned host memory");
    assertArrayEquals(first, master.toFloatArray(), "the masters are the float32 values");
  }
}
