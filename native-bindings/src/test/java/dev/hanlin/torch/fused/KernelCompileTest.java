package dev.hanlin.torch.fused;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.cuda.Nvrtc;
import dev.hanlin.torch.cuda.NvrtcException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Compiles every fused kernel with the real NVRTC, no GPU needed: for the H100/H200 (sm_90), the
 * A100 (sm_80) and Blackwell (sm_100). Runs wherever libnvrtc.so.13 can be loaded (-Dhanlin.nvrtc
 * or HANLIN_NVRTC naming its folder, or LD_LIBRARY_PATH) and is skipped elsewhere.
 */
@Tag("nvrtc")
class KernelCompileTest {
  @BeforeAll
  static void needNvrtc() {
    Assumptions.assumeTrue(Nvrtc.available(), "libnvrtc.so.13 not found (set HANLIN_NVRTC)");
  }

  @ParameterizedTest
  @ValueSource(strings = {"sm_80", "sm_90", "sm_100"})
  void everyKernelCompilesAndIsExported(String arch) {
    Nvrtc.Compiled c =
        Nvrtc.get().compile(BlockKernels.source(), BlockKernels.FILE, arch, BlockKernels.OPTIONS);
    assertTrue(c.cubin().length > 1000, "cubin of " + c.cubin().length + " bytes");
    // a cubin is an ELF file whose string table names each kernel
    assertEquals(0x7f, c.cubin()[0]);
    assertEquals("ELF", new String(c.cubin(), 1, 3, StandardCharsets.US_ASCII));
    String image = new String(c.cubin(), StandardCharsets.ISO_8859_1);
    for (String name : BlockKernels.names()) {
      assertTrue(image.contains("\0" + name + "\0"), name + " is not in the " + arch + " cubin");
    }
    assertTrue(!c.log().contains("warning"), "NVRTC warned:\n" + c.log());
  }

  /**
   * ptxas' report: no kernel spills registers to local memory (the 16-byte vector paths hold a
   * row's slots in registers; a spill would turn them into memory traffic) and the norm kernels
   * stay within the 64 registers a thread that their 1024-thread launch bound allows.
   */
  @ParameterizedTest
  @ValueSource(strings = {"sm_80", "sm_90"})
  void noKernelSpillsRegisters(String arch) {
    List<String> options = new java.util.ArrayList<>(BlockKernels.OPTIONS);
    options.add("--ptxas-options=-v");
    String log = Nvrtc.get().compile(BlockKernels.source(), BlockKernels.FILE, arch, options).log();
    String[] parts = log.split("Compiling entry function '");
    assertEquals(BlockKernels.names().size() + 1, parts.length, "one report a kernel:\n" + log);
    var spill =
        java.util.regex.Pattern.compile("(\\d+) bytes spill stores, (\\d+) bytes spill loads");
    var regs = java.util.regex.Pattern.compile("Used (\\d+) registers");
    for (int i = 1; i < parts.length; i++) {
      String name = parts[i].substring(0, parts[i].indexOf('\''));
      var m = spill.matcher(parts[i]);
      assertTrue(m.find(), name + ": no spill report\n" + parts[i]);
      assertEquals("0 0", m.group(1) + " " + m.group(2), name + " spills:\n" + parts[i]);
      var r = regs.matcher(parts[i]);
      assertTrue(r.find(), name + ": no register report\n" + parts[i]);
      if (name.contains("rmsnorm")) {
        assertTrue(Integer.parseInt(r.group(1)) <= 64, name + " over 64 registers:\n" + parts[i]);
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"sm_90"})
  void aCompileErrorCarriesTheLog(String arch) {
    NvrtcException e =
        assertThrows(
            NvrtcException.class,
            () ->
                Nvrtc.get()
                    .compile(
                        "extern \"C\" __global__ void k(float* x) { x[0] = y; }",
                        "broken.cu",
                        arch,
                        List.of()));
    assertTrue(e.getMessage().contains("broken.cu"), e.getMessage());
    assertTrue(e.log().contains("\"y\" is undefined"), e.log());
  }
}
