package dev.hanlin.torch.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * NVRTC, CUDA's run-time compiler, called through the JDK's foreign-function API rather than
 * JavaCPP's {@code org.bytedeco.cuda.global.nvrtc}: JavaCPP's NVRTC class loads its CUDA runtime
 * wrapper first, which links the driver ({@code libcuda.so.1}), so it cannot even start on a
 * machine without an NVIDIA driver. NVRTC itself needs no GPU, so this way CI compiles every kernel
 * for the target architecture. The library is {@code libnvrtc.so.13} from the directory or file
 * named by the system property {@code hanlin.nvrtc} or the environment variable {@code
 * HANLIN_NVRTC}, else from the loader's search path ({@code LD_LIBRARY_PATH}; on the GPU machine
 * the CUDA 13 folder that {@code gpu-java} puts there). It finds {@code libnvrtc-builtins.so.13.*}
 * beside itself.
 */
public final class Nvrtc implements KernelCompiler {
  /** The file name NVRTC 13 has on Linux. */
  public static final String LIBRARY = "libnvrtc.so.13";

  private static volatile Nvrtc instance;

  private final MethodHandle version;
  private final MethodHandle errorString;
  private final MethodHandle create;
  private final MethodHandle compile;
  private final MethodHandle destroy;
  private final MethodHandle logSize;
  private final MethodHandle log;
  private final MethodHandle cubinSize;
  private final MethodHandle cubin;
  private final String versionText;

  private Nvrtc(SymbolLookup lib) {
    Linker l = Linker.nativeLinker();
    version = l.downcallHandle(find(lib, "nvrtcVersion"), fd(ADDRESS, ADDRESS));
    errorString =
        l.downcallHandle(
            find(lib, "nvrtcGetErrorString"), FunctionDescriptor.of(ADDRESS, JAVA_INT));
    create =
        l.downcallHandle(
            find(lib, "nvrtcCreateProgram"),
            fd(ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
    compile = l.downcallHandle(find(lib, "nvrtcCompileProgram"), fd(ADDRESS, JAVA_INT, ADDRESS));
    destroy = l.downcallHandle(find(lib, "nvrtcDestroyProgram"), fd(ADDRESS));
    logSize = l.downcallHandle(find(lib, "nvrtcGetProgramLogSize"), fd(ADDRESS, ADDRESS));
    log = l.downcallHandle(find(lib, "nvrtcGetProgramLog"), fd(ADDRESS, ADDRESS));
    cubinSize = l.downcallHandle(find(lib, "nvrtcGetCUBINSize"), fd(ADDRESS, ADDRESS));
    cubin = l.downcallHandle(find(lib, "nvrtcGetCUBIN"), fd(ADDRESS, ADDRESS));
    try (Arena a = Arena.ofConfined()) {
      MemorySegment major = a.allocate(JAVA_INT);
      MemorySegment minor = a.allocate(JAVA_INT);
      check((int) version.invokeExact(major, minor), "nvrtcVersion");
      versionText = major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0);
    } catch (Throwable e) {
      throw rethrow(e);
    }
  }

  private static FunctionDescriptor fd(java.lang.foreign.MemoryLayout... args) {
    return FunctionDescriptor.of(JAVA_INT, args);
  }

  private static MemorySegment find(SymbolLookup lib, String name) {
    return lib.find(name)
        .orElseThrow(() -> new NvrtcException(LIBRARY + " has no symbol " + name, null));
  }

  /** The loaded NVRTC; throws {@link NvrtcException} saying where it looked when it is absent. */
  public static Nvrtc get() {
    Nvrtc n = instance;
    if (n != null) return n;
    synchronized (Nvrtc.class) {
      if (instance == null) instance = new Nvrtc(lookup());
      return instance;
    }
  }

  /** Whether NVRTC can be loaded here (for tests that skip without it). */
  public static boolean available() {
    try {
      get();
      return true;
    } catch (NvrtcException | IllegalArgumentException e) {
      return false;
    }
  }

  private static SymbolLookup lookup() {
    String where = System.getProperty("hanlin.nvrtc", System.getenv("HANLIN_NVRTC"));
    String name = LIBRARY;
    if (where != null && !where.isBlank()) {
      Path p = Path.of(where);
      if (Files.isDirectory(p)) p = p.resolve(LIBRARY);
      if (!Files.isRegularFile(p)) {
        throw new NvrtcException(
            "hanlin.nvrtc/HANLIN_NVRTC names " + where + ": no " + LIBRARY, null);
      }
      name = p.toAbsolutePath().toString();
      preloadBuiltins(p.getParent());
    }
    try {
      return SymbolLookup.libraryLookup(name, Arena.global());
    } catch (IllegalArgumentException e) {
      throw new NvrtcException(
          "cannot load "
              + name
              + " (set -Dhanlin.nvrtc=DIR or HANLIN_NVRTC, or put it on LD_LIBRARY_PATH)",
          null);
    }
  }

  /**
   * NVRTC opens its builtins library by name through the loader's search path, not beside itself;
   * one already loaded under that name is found first, so loading it here makes a folder given by
   * property work without LD_LIBRARY_PATH.
   */
  private static void preloadBuiltins(Path dir) {
    try (var files = Files.list(dir)) {
      files
          .filter(f -> f.getFileName().toString().startsWith("libnvrtc-builtins.so"))
          .forEach(f -> SymbolLookup.libraryLookup(f, Arena.global()));
    } catch (java.io.IOException | IllegalArgumentException e) {
      // NVRTC then says which builtins library it could not open
    }
  }

  /** NVRTC's version, {@code "13.1"}; part of every cached kernel's key. */
  @Override
  public String version() {
    return versionText;
  }

  @Override
  public byte[] cubin(String source, String name, String arch, List<String> options) {
    return compile(source, name, arch, options).cubin();
  }

  /** A compiled cubin and NVRTC's log (warnings, or ptxas' register report when asked). */
  public record Compiled(byte[] cubin, String log) {}

  /**
   * Compiles one CUDA C++ translation unit to a cubin for {@code arch} ({@code "sm_90"}). Throws
   * {@link NvrtcException} carrying NVRTC's log on a compile error.
   */
  public Compiled compile(String source, String name, String arch, List<String> options) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment progSlot = a.allocate(ADDRESS);
      check(
          (int)
              create.invokeExact(
                  progSlot,
                  a.allocateFrom(source),
                  a.allocateFrom(name),
                  0,
                  MemorySegment.NULL,
                  MemorySegment.NULL),
          "nvrtcCreateProgram");
      MemorySegment prog = progSlot.get(ADDRESS, 0);
      try {
        List<String> all = new java.util.ArrayList<>();
        all.add("--gpu-architecture=" + arch);
        all.addAll(options);
        MemorySegment opts = a.allocate(ADDRESS, all.size());
        for (int i = 0; i < all.size(); i++)
          opts.setAtIndex(ADDRESS, i, a.allocateFrom(all.get(i)));
        int rc = (int) compile.invokeExact(prog, all.size(), opts);
        String logText = programLog(a, prog);
        if (rc != 0) {
          throw new NvrtcException(
              name + ": NVRTC " + versionText + " failed for " + arch + " (" + error(rc) + ")",
              logText);
        }
        MemorySegment size = a.allocate(JAVA_LONG);
        check((int) cubinSize.invokeExact(prog, size), "nvrtcGetCUBINSize");
        MemorySegment out = a.allocate(size.get(JAVA_LONG, 0));
        check((int) cubin.invokeExact(prog, out), "nvrtcGetCUBIN");
        return new Compiled(out.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), logText);
      } finally {
        int ignored = (int) destroy.invokeExact(progSlot);
      }
    } catch (NvrtcException e) {
      throw e;
    } catch (Throwable e) {
      throw rethrow(e);
    }
  }

  private String programLog(Arena a, MemorySegment prog) throws Throwable {
    MemorySegment size = a.allocate(JAVA_LONG);
    check((int) logSize.invokeExact(prog, size), "nvrtcGetProgramLogSize");
    MemorySegment text = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
    check((int) log.invokeExact(prog, text), "nvrtcGetProgramLog");
    return text.getString(0);
  }

  private void check(int rc, String what) {
    if (rc != 0) throw new NvrtcException(what + " failed: " + error(rc), null);
  }

  private String error(int rc) {
    try {
      MemorySegment s = (MemorySegment) errorString.invokeExact(rc);
      return s.reinterpret(256).getString(0) + " (" + rc + ")";
    } catch (Throwable e) {
      return "NVRTC error " + rc;
    }
  }

  private static RuntimeException rethrow(Throwable e) {
    if (e instanceof RuntimeException r) return r;
    if (e instanceof Error err) throw err;
    return new IllegalStateException(e);
  }
}
