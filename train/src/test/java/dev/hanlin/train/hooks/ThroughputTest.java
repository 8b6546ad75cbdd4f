package dev.hanlin.train.hooks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.Device;
import org.junit.jupiter.api.Test;

/** MFU's peak comes from the name of the GPU the rank trains on; unknown GPUs get no MFU. */
class ThroughputTest {
  @Test
  void thePeakIsLookedUpFromTheDeviceName() {
    assertEquals(312e12, Throughput.peakOf(Device.cuda(1), i -> "NVIDIA A100-SXM4-80GB"));
    assertEquals(989e12, Throughput.peakOf(Device.cuda(0), i -> "NVIDIA H200"));
    assertEquals(989e12, Throughput.peakOf(Device.cuda(0), i -> "NVIDIA H100 80GB HBM3"));
    assertEquals(362e12, Throughput.peakOf(Device.cuda(0), i -> "NVIDIA L40S"));
    assertEquals(165e12, Throughput.peakOf(Device.cuda(0), i -> "NVIDIA GeForce RTX 4090"));
    assertTrue(Double.isNaN(Throughput.peakOf(Device.cuda(0), i -> "Tesla T4")));
    assertTrue(Double.isNaN(Throughput.peakOf(Device.CPU, i -> "NVIDIA H100")));
  }

  @Test
  void theNameIsAskedOfTheRanksDevice() {
    assertEquals(
        165e12,
        Throughput.peakOf(Device.cuda(2), i -> i == 2 ? "NVIDIA GeForce RTX 4090" : "NVIDIA H100"));
  }
}
