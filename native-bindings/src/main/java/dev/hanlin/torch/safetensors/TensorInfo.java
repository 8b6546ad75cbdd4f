package dev.hanlin.torch.safetensors;

import dev.hanlin.torch.DType;
import java.util.Arrays;

/**
 * One header entry of a safetensors file: the tensor's element type, shape, and its byte range
 * {@code [begin, end)} relative to the start of the data region (after the 8-byte length and the
 * JSON header).
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {
  public TensorInfo {
    shape = shape.clone();
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** Number of elements (1 for a 0-dim tensor). Validated not to overflow when the file opened. */
  public long numel() {
    long n = 1;
    for (long d : shape) n *= d;
    return n;
  }

  /** Bytes of data, {@code end - begin}. */
  public long byteSize() {
    return end - begin;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo t
        && name.equals(t.name)
        && dtype == t.dtype
        && Arrays.equals(shape, t.shape)
        && begin == t.begin
        && end == t.end;
  }

  @Override
  public int hashCode() {
    return 31 * (31 * name.hashCode() + dtype.hashCode()) + Arrays.hashCode(shape)
        ^ Long.hashCode(begin) * 17
        ^ Long.hashCode(end);
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape) + " [" + begin + ", " + end + ")";
  }
}
