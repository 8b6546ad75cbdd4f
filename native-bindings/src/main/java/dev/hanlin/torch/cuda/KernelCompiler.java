package dev.hanlin.torch.cuda;

import java.util.List;

/** Turns CUDA C++ source into a cubin; {@link Nvrtc} is the real one. */
public interface KernelCompiler {
  /** The compiler's version, part of every cache key. */
  String version();

  byte[] cubin(String source, String name, String arch, List<String> options);
}
