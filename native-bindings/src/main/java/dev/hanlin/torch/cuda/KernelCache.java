package dev.hanlin.torch.cuda;

import dev.hanlin.torch.io.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * Compiled kernels on disk, so that a run compiles each source once per card architecture and NVRTC
 * version: {@code <dir>/<sha256 of source, arch, NVRTC version, options>.cubin}. The folder is
 * {@code hanlin.kernel.cache} / {@code HANLIN_KERNEL_CACHE}, else {@code ~/.cache/hanlin/kernels}.
 * Each file is written atomically under a temporary name unique to the process, so ranks of one job
 * that compile the same kernel at once never see half a file; the last rename wins, with identical
 * bytes.
 */
public final class KernelCache {
  private final Path dir;

  public KernelCache(Path dir) {
    this.dir = dir;
  }

  /** The cache at its configured or default folder. */
  public static KernelCache standard() {
    String d = System.getProperty("hanlin.kernel.cache", System.getenv("HANLIN_KERNEL_CACHE"));
    if (d == null || d.isBlank()) {
      d = Path.of(System.getProperty("user.home"), ".cache", "hanlin", "kernels").toString();
    }
    return new KernelCache(Path.of(d));
  }

  public Path dir() {
    return dir;
  }

  /** The cache key: hex SHA-256 over every input that changes the cubin. */
  public static String key(String source, String arch, String nvrtcVersion, List<String> options) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      for (String part : List.of(source, arch, nvrtcVersion, String.join("\u0001", options))) {
        md.update(part.getBytes(StandardCharsets.UTF_8));
        md.update((byte) 0); // separates parts, so ("ab","c") and ("a","bc") differ
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The cached cubin, or one compiled with {@code nvrtc} and stored. */
  public byte[] cubin(
      KernelCompiler nvrtc, String source, String name, String arch, List<String> options) {
    Path file = dir.resolve(key(source, arch, nvrtc.version(), options) + ".cubin");
    try {
      return Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      // not compiled yet on this machine
    } catch (IOException e) {
      System.err.println("kernel cache: cannot read " + file + " (" + e + "), compiling");
    }
    byte[] bin = nvrtc.cubin(source, name, arch, options);
    try {
      Files.createDirectories(dir);
      Path tmp = dir.resolve(file.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
      AtomicFiles.write(file, tmp, ch -> AtomicFiles.writeFully(ch, java.nio.ByteBuffer.wrap(bin)));
    } catch (IOException e) {
      // a read-only or full disk costs a recompile next run, never the run itself
      System.err.println("kernel cache: cannot write " + file + ": " + e.getMessage());
    }
    return bin;
  }
}
