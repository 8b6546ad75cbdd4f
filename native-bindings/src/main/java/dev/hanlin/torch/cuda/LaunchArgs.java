package dev.hanlin.torch.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The {@code void** kernelParams} of a launch, made once and refilled for every launch: {@link
 * #MAX} 8-byte slots and the array of pointers to them (CUDA reads as many bytes from a slot as the
 * parameter has). A fresh arena and boxed arguments per launch cost more host time than the launch
 * itself; this costs a few stores. Not thread-safe: one per thread ({@link #ofThisThread()}),
 * filled and launched before the next fill; cuLaunchKernel copies the values, so the slots may be
 * overwritten right after it returns.
 */
public final class LaunchArgs {
  public static final int MAX = 24; // the fused RoPE backward takes 21
  private static final ThreadLocal<LaunchArgs> PER_THREAD =
      ThreadLocal.withInitial(LaunchArgs::new);

  private final MemorySegment values;
  private final MemorySegment params;
  private int count;

  public LaunchArgs() {
    Arena arena = Arena.ofAuto(); // freed with this object
    values = arena.allocate(8L * MAX, 8);
    params = arena.allocate(ADDRESS, MAX);
    for (int i = 0; i < MAX; i++) params.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
  }

  /** This thread's instance, cleared. */
  public static LaunchArgs ofThisThread() {
    return PER_THREAD.get().clear();
  }

  public LaunchArgs clear() {
    count = 0;
    return this;
  }

  /** A pointer or a {@code long long}. */
  public LaunchArgs i64(long v) {
    values.set(JAVA_LONG, slot(), v);
    return this;
  }

  public LaunchArgs i32(int v) {
    values.set(JAVA_INT, slot(), v);
    return this;
  }

  public LaunchArgs f32(float v) {
    values.set(JAVA_FLOAT, slot(), v);
    return this;
  }

  public int count() {
    return count;
  }

  /** The pointer array cuLaunchKernel takes. */
  MemorySegment params() {
    return params;
  }

  private long slot() {
    if (count == MAX)
      throw new IllegalStateException("a launch takes at most " + MAX + " arguments");
    return 8L * count++;
  }
}
