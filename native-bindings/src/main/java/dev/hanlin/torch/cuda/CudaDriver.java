package dev.hanlin.torch.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * The few CUDA driver calls that load a cubin and launch its kernels, through the JDK's FFM on
 * {@code libcuda.so.1} (the driver every CUDA machine has). libtorch has already made the device's
 * primary context current on the thread that runs CUDA ops; modules load into that context, and
 * launches go on the stream the caller passes (libtorch's current stream), so they order with
 * libtorch's own kernels and never synchronize the host.
 */
public final class CudaDriver {
  private static final int CC_MAJOR = 75; // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
  private static final int CC_MINOR = 76;
  private static volatile CudaDriver instance;

  private final MethodHandle ctxGetCurrent;
  private final MethodHandle ctxGetDevice;
  private final MethodHandle deviceGetAttribute;
  private final MethodHandle moduleLoadData;
  private final MethodHandle moduleGetFunction;
  private final MethodHandle launchKernel;
  private final MethodHandle errorString;

  private CudaDriver(SymbolLookup lib) {
    Linker l = Linker.nativeLinker();
    ctxGetCurrent = l.downcallHandle(find(lib, "cuCtxGetCurrent"), fd(ADDRESS));
    ctxGetDevice = l.downcallHandle(find(lib, "cuCtxGetDevice"), fd(ADDRESS));
    deviceGetAttribute =
        l.downcallHandle(find(lib, "cuDeviceGetAttribute"), fd(ADDRESS, JAVA_INT, JAVA_INT));
    moduleLoadData = l.downcallHandle(find(lib, "cuModuleLoadData"), fd(ADDRESS, ADDRESS));
    moduleGetFunction =
        l.downcallHandle(find(lib, "cuModuleGetFunction"), fd(ADDRESS, ADDRESS, ADDRESS));
    launchKernel =
        l.downcallHandle(
            find(lib, "cuLaunchKernel"),
            fd(
                ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS));
    errorString = l.downcallHandle(find(lib, "cuGetErrorString"), fd(JAVA_INT, ADDRESS));
  }

  private static FunctionDescriptor fd(java.lang.foreign.MemoryLayout... args) {
    return FunctionDescriptor.of(JAVA_INT, args);
  }

  private static MemorySegment find(SymbolLookup lib, String name) {
    return lib.find(name)
        .orElseThrow(() -> new IllegalStateException("libcuda.so.1 has no symbol " + name));
  }

  public static CudaDriver get() {
    CudaDriver d = instance;
    if (d != null) return d;
    synchronized (CudaDriver.class) {
      if (instance == null) {
        try {
          instance = new CudaDriver(SymbolLookup.libraryLookup("libcuda.so.1", Arena.global()));
        } catch (IllegalArgumentException e) {
          throw new IllegalStateException("cannot load libcuda.so.1 (no NVIDIA driver here)", e);
        }
      }
      return instance;
    }
  }

  /** A loaded module (one cubin in the current context). */
  public record Module(MemorySegment handle) {}

  /** A kernel of a loaded module. */
  public record Function(MemorySegment handle, String name) {}

  /**
   * The device ordinal of the thread's current context; throws when there is none (libtorch makes
   * one current with its first CUDA op on this thread, or {@code set_device}).
   */
  public int currentDevice() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment ctx = a.allocate(ADDRESS);
      check((int) ctxGetCurrent.invokeExact(ctx), "cuCtxGetCurrent");
      if (ctx.get(ADDRESS, 0).equals(MemorySegment.NULL)) {
        throw new IllegalStateException(
            "no current CUDA context on thread " + Thread.currentThread().getName());
      }
      MemorySegment dev = a.allocate(JAVA_INT);
      check((int) ctxGetDevice.invokeExact(dev), "cuCtxGetDevice");
      return dev.get(JAVA_INT, 0);
    } catch (Throwable e) {
      throw rethrow(e);
    }
  }

  /** The architecture NVRTC compiles for: {@code "sm_90"} on an H100/H200. */
  public String arch(int device) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(JAVA_INT);
      check((int) deviceGetAttribute.invokeExact(v, CC_MAJOR, device), "cuDeviceGetAttribute");
      int major = v.get(JAVA_INT, 0);
      check((int) deviceGetAttribute.invokeExact(v, CC_MINOR, device), "cuDeviceGetAttribute");
      return "sm_" + major + v.get(JAVA_INT, 0);
    } catch (Throwable e) {
      throw rethrow(e);
    }
  }

  /** Loads a cubin into the current context (which stays its owner until the process ends). */
  public Module load(byte[] cubin) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment slot = a.allocate(ADDRESS);
      MemorySegment image = a.allocate(cubin.length);
      MemorySegment.copy(MemorySegment.ofArray(cubin), 0, image, 0, cubin.length);
      check((int) moduleLoadData.invokeExact(slot, image), "cuModuleLoadData");
      return new Module(slot.get(ADDRESS, 0));
    } catch (Throwable e) {
      throw rethrow(e);
    }
  }

  public Function function(Module m, String name) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment slot = a.allocate(ADDRESS);
      check(
          (int) moduleGetFunction.invokeExact(slot, m.handle(), a.allocateFrom(name)),
          "cuModuleGetFunction(" + name + ")");
      return new Function(slot.get(ADDRESS, 0), name);
    } catch (Throwable e) {
      throw rethrow(e);
    }
  }

  /**
   * Launches {@code f} on {@code stream} (a {@code cudaStream_t}'s address) with a 1-D grid and
   * block. Arguments are passed by their Java type: {@code Long} for pointers and {@code long
   * long}, {@code Integer} for {@code int}, {@code Float} for {@code float}; they must match the
   * kernel's parameters in order, which the launch cannot check.
   */
  public void launch(Function f, long grid, int block, long stream, Object... args) {
    launch(f, grid, 1, block, stream, args);
  }

  /** As {@link #launch(Function, long, int, long, Object...)} with a 2-D grid. */
  public void launch(Function f, long grid, long gridY, int block, long stream, Object... args) {
    if (grid < 1 || grid > Integer.MAX_VALUE || gridY < 1 || gridY > 65535) {
      throw new IllegalArgumentException(f.name() + ": grid " + grid + " x " + gridY);
    }
    if (block < 1 || block > 1024)
      throw new IllegalArgumentException(f.name() + ": block " + block);
    try (Arena a = Arena.ofConfined()) {
      MemorySegment params = params(a, f.name(), args);
      int rc =
          (int)
              launchKernel.invokeExact(
                  f.handle(),
                  (int) grid,
                  (int) gridY,
                  1,
                  block,
                  1,
                  1,
                  0,
                  MemorySegment.ofAddress(stream),
                  params,
                  MemorySegment.NULL);
      check(rc, "cuLaunchKernel(" + f.name() + ")");
    } catch (Throwable e) {
      throw rethrow(e);
    }
  }

  /**
   * As {@link #launch(Function, long, long, int, long, Object...)} with the arguments already in a
   * reusable block: no allocation on the host, for the per-op path.
   */
  public void launch(Function f, long grid, long gridY, int block, long stream, LaunchArgs args) {
    if (grid < 1 || grid > Integer.MAX_VALUE || gridY < 1 || gridY > 65535) {
      throw new IllegalArgumentException(f.name() + ": grid " + grid + " x " + gridY);
    }
    if (block < 1 || block > 1024)
      throw new IllegalArgumentException(f.name() + ": block " + block);
    int rc;
    try {
      rc =
          (int)
              launchKernel.invokeExact(
                  f.handle(),
                  (int) grid,
                  (int) gridY,
                  1,
                  block,
                  1,
                  1,
                  0,
                  MemorySegment.ofAddress(stream),
                  args.params(),
                  MemorySegment.NULL);
    } catch (Throwable e) {
      throw rethrow(e);
    }
    check(rc, "cuLaunchKernel(" + f.name() + ")");
  }

  /**
   * The {@code void** kernelParams} of a launch: one 8-byte slot per argument (CUDA reads as many
   * bytes as the parameter has), and an array of pointers to the slots.
   */
  static MemorySegment params(Arena a, String kernel, Object... args) {
    MemorySegment values = a.allocate(8L * Math.max(1, args.length), 8);
    MemorySegment params = a.allocate(ADDRESS, Math.max(1, args.length));
    for (int i = 0; i < args.length; i++) {
      long off = 8L * i;
      switch (args[i]) {
        case Long v -> values.set(JAVA_LONG, off, v);
        case Integer v -> values.set(JAVA_INT, off, v);
        case Float v -> values.set(JAVA_FLOAT, off, v);
        case null, default ->
            throw new IllegalArgumentException(
                kernel + ": argument " + i + " is " + args[i] + ", not a Long, Integer or Float");
      }
      params.setAtIndex(ADDRESS, i, values.asSlice(off));
    }
    return params;
  }

  private void check(int rc, String what) {
    if (rc == 0) return;
    String text = "CUDA error " + rc;
    try (Arena a = Arena.ofConfined()) {
      MemorySegment s = a.allocate(ADDRESS);
      if ((int) errorString.invokeExact(rc, s) == 0) {
        text = s.get(ADDRESS, 0).reinterpret(256).getString(0) + " (" + rc + ")";
      }
    } catch (Throwable ignored) {
      // keep the number
    }
    throw new IllegalStateException(what + " failed: " + text);
  }

  private static RuntimeException rethrow(Throwable e) {
    if (e instanceof RuntimeException r) return r;
    if (e instanceof Error err) throw err;
    return new IllegalStateException(e);
  }
}
