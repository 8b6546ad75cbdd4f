package dev.hanlin.torch.fused;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Runs src/test/cuda/emulate.sh: block_ops.cu compiled by the host C++ compiler under a small CUDA
 * emulator, every kernel thread by thread against a naive reference (about 2 minutes on 2 cores,
 * hence slow). Skipped where there is no g++.
 */
@Tag("slow")
class KernelEmulationTest {
  @Test
  void everyKernelMatchesItsReferenceUnderTheEmulator() throws IOException, InterruptedException {
    Assumptions.assumeTrue(onPath("g++"), "no g++");
    Path script = Path.of("src/test/cuda/emulate.sh").toAbsolutePath();
    Process p = new ProcessBuilder("bash", script.toString()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(10, TimeUnit.MINUTES), "emulation did not finish");
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("all ok"), out);
  }

  private static boolean onPath(String exe) {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, exe))) return true;
    }
    return false;
  }
}
