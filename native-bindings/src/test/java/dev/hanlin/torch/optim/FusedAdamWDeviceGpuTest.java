package dev.hanlin.torch.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Offload's case: parameters, gradients and moments on the host, while the clip scale and the skip
 * flag come from the GPU (where the norm of the device gradients is computed). Before the fix that
 * moves them to the parameters' device, the CPU kernel stopped ("scalar tensor is expected to be on
 * cpu but is on cuda:0", the first 7B offload run on an H200). It needs a GPU: run by
 * bench/gpu-offload.sh through the JUnit console launcher (tag gpu).
 */
@Tag("gpu")
class FusedAdamWDeviceGpuTest {
  static final FusedAdamW.Betas BETAS = new FusedAdamW.Betas(0.9, 0.95, 1e-8);
  static final float[] P = {0.5f, -1.25f, 2f, 0.125f}, G = {0.1f, -0.2f, 0.3f, -0.4f};

  @BeforeEach
  void cuda() {
    Assumptions.assumeTrue(Torch.cudaAvailable(), "no CUDA");
  }

  /** The parameter and step count after one update on the host with the given scalars. */
  static float[][] step(Tensor gradScale, Tensor foundInf) {
    try (Scope s = Scope.open()) {
      Tensor p = Torch.fromFloats(P.clone(), 4);
      Tensor step = Torch.zeros(DType.F32, Device.CPU);
      FusedAdamW.step(
          List.of(p),
          List.of(Torch.fromFloats(G.clone(), 4)),
          List.of(Torch.zeros(DType.F32, Device.CPU, 4)),
          List.of(Torch.zeros(DType.F32, Device.CPU, 4)),
          List.of(step),
          1e-2,
          0.1,
          BETAS,
          gradScale,
          foundInf);
      return new float[][] {p.toFloatArray(), step.reshape(1).toFloatArray()};
    }
  }

  static Tensor scalar(double v, Device d) {
    return Torch.full(v, DType.F32, d);
  }

  @Test
  void aHostUpdateTakesTheClipScaleAndSkipFlagFromTheGpuAndGivesTheHostResult() {
    try (Scope s = Scope.open()) {
      Device gpu = Device.cuda(0);
      float[][] host = step(scalar(2.0, Device.CPU), scalar(0.0, Device.CPU));
      float[][] fromGpu = step(scalar(2.0, gpu), scalar(0.0, gpu));
      assertFalse(Arrays.equals(P, host[0]), "the update changed the parameter");
      assertArrayEquals(host[0], fromGpu[0]);
      assertArrayEquals(new float[] {1}, fromGpu[1]);
    }
  }

  @Test
  void aSkipFlagFromTheGpuLeavesTheHostParameterAndStepCountAsTheyWere() {
    try (Scope s = Scope.open()) {
      Device gpu = Device.cuda(0);
      float[][] skipped = step(scalar(1.0, gpu), scalar(1.0, gpu));
      assertArrayEquals(P, skipped[0]);
      assertArrayEquals(new float[] {0}, skipped[1]);
    }
  }
}
