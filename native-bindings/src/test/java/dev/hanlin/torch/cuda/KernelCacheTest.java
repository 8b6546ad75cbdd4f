package dev.hanlin.torch.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelCacheTest {
  /** Compiles to the source's bytes with the arch appended, counting calls. */
  static final class Fake implements KernelCompiler {
    final List<String> calls = new ArrayList<>();
    String version = "13.1";

    @Override
    public String version() {
      return version;
    }

    @Override
    public byte[] cubin(String source, String name, String arch, List<String> options) {
      calls.add(name + "@" + arch);
      return (source + "|" + arch).getBytes();
    }
  }

  @Test
  void keyChangesWithEachInput() {
    String k = KernelCache.key("src", "sm_90", "13.1", List.of("-std=c++17"));
    assertEquals(64, k.length());
    assertEquals(k, KernelCache.key("src", "sm_90", "13.1", List.of("-std=c++17")));
    assertNotEquals(k, KernelCache.key("src ", "sm_90", "13.1", List.of("-std=c++17")));
    assertNotEquals(k, KernelCache.key("src", "sm_80", "13.1", List.of("-std=c++17")));
    assertNotEquals(k, KernelCache.key("src", "sm_90", "13.2", List.of("-std=c++17")));
    assertNotEquals(k, KernelCache.key("src", "sm_90", "13.1", List.of()));
    // part boundaries count: moving a character from one part to the next is another key
    assertNotEquals(
        KernelCache.key("ab", "c", "v", List.of()), KernelCache.key("a", "bc", "v", List.of()));
  }

  @Test
  void compilesOncePerSourceArchAndVersionThenReadsTheFile(@TempDir Path dir) throws Exception {
    Fake nvrtc = new Fake();
    KernelCache cache = new KernelCache(dir.resolve("kernels"));
    byte[] first = cache.cubin(nvrtc, "src", "a.cu", "sm_90", List.of());
    byte[] again = cache.cubin(nvrtc, "src", "a.cu", "sm_90", List.of());
    assertArrayEquals(first, again);
    assertEquals(List.of("a.cu@sm_90"), nvrtc.calls);
    Path file =
        dir.resolve("kernels")
            .resolve(KernelCache.key("src", "sm_90", "13.1", List.of()) + ".cubin");
    assertArrayEquals(first, Files.readAllBytes(file));
    try (var s = Files.list(file.getParent())) {
      assertEquals(1, s.count(), "no temporary file is left behind");
    }
    cache.cubin(nvrtc, "src", "a.cu", "sm_80", List.of());
    nvrtc.version = "13.2";
    cache.cubin(nvrtc, "src", "a.cu", "sm_90", List.of());
    assertEquals(List.of("a.cu@sm_90", "a.cu@sm_80", "a.cu@sm_90"), nvrtc.calls);
  }

  @Test
  void anUnwritableCacheStillCompiles(@TempDir Path dir) throws Exception {
    Path notADir = Files.writeString(dir.resolve("file"), "x");
    Fake nvrtc = new Fake();
    byte[] b = new KernelCache(notADir).cubin(nvrtc, "src", "a.cu", "sm_90", List.of());
    assertArrayEquals("src|sm_90".getBytes(), b);
  }
}
