package dev.hanlin.torch.fused;

import dev.hanlin.torch.Device;
import dev.hanlin.torch.Torch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;

/**
 * The NVRTC kernels against libtorch on the GPU (the checks and tolerances are {@link
 * BlockOpsCheck}'s). On the device: bench/gpu-kernels.sh.
 */
@Tag("gpu")
class NvrtcOpsGpuTest extends BlockOpsCheck {
  @BeforeAll
  static void cuda() {
    Assumptions.assumeTrue(Torch.cudaAvailable(), "no CUDA");
    dev = Device.cuda(0);
    ops = NvrtcOps.forDevice(dev);
  }
}
