package dev.hanlin.torch;

/**
 * JavaCPP settings Hanlin runs with, set as system properties before JavaCPP's {@code Pointer}
 * class reads them (once, when it is first initialized); the facade's entry classes ({@link Torch},
 * {@link Tensor}, {@link Scope}) call {@link #apply()} first thing.
 *
 * <p>{@code maxPhysicalBytes=0}: by default JavaCPP reads the process's resident size from {@code
 * /proc/self/statm} (one {@code pread} system call) on every native object it registers, to call
 * {@code System.gc()} when it passes twice the Java heap. Every op result, optional and scalar is
 * such an object, so that was a system call per object, the largest host cost per op
 * (bench/results/2026-12-02-cpu-host-cost.log). Native and GPU memory here is freed by {@link
 * Scope}s, not by the GC, so the check buys nothing; with it off, the GC still frees unscoped
 * objects. A value the user passes ({@code -Dorg.bytedeco.javacpp.maxPhysicalBytes=...}, either
 * spelling) wins.
 */
final class JavaCppSettings {
  private static final String[] MAX_PHYSICAL_BYTES = {
    "org.bytedeco.javacpp.maxPhysicalBytes", "org.bytedeco.javacpp.maxphysicalbytes"
  };

  private JavaCppSettings() {}

  static void apply() {
    for (String key : MAX_PHYSICAL_BYTES) {
      if (System.getProperty(key) != null) return;
    }
    System.setProperty(MAX_PHYSICAL_BYTES[0], "0");
  }
}
