package dev.hanlin.torch;

import java.util.Locale;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Element types, named as in safetensors. Native calls return {@link ScalarType} objects that are
 * not the canonical enum constants (javacpp-pytorch.md, pitfall 1), so every conversion goes
 * through {@link #of(ScalarType)}, which compares the numeric value.
 */
public enum DType {
  BOOL(ScalarType.Bool, 1),
  U8(ScalarType.Byte, 1),
  I8(ScalarType.Char, 1),
  I16(ScalarType.Short, 2),
  U16(ScalarType.UInt16, 2),
  F16(ScalarType.Half, 2),
  BF16(ScalarType.BFloat16, 2),
  I32(ScalarType.Int, 4),
  U32(ScalarType.UInt32, 4),
  F32(ScalarType.Float, 4),
  F64(ScalarType.Double, 8),
  I64(ScalarType.Long, 8),
  U64(ScalarType.UInt64, 8),
  F8_E4M3(ScalarType.Float8_e4m3fn, 1),
  F8_E5M2(ScalarType.Float8_e5m2, 1);

  private final ScalarType scalarType;
  private final int byteSize;

  DType(ScalarType scalarType, int byteSize) {
    this.scalarType = scalarType;
    this.byteSize = byteSize;
  }

  /** Bytes per element. */
  public int byteSize() {
    return byteSize;
  }

  /** Whether this is a floating-point type. */
  public boolean isFloatingPoint() {
    return this == F16
        || this == BF16
        || this == F32
        || this == F64
        || this == F8_E4M3
        || this == F8_E5M2;
  }

  ScalarType scalarType() {
    return scalarType;
  }

  /** DTypes by native scalar type value; values() would copy the array on every dtype() call. */
  private static final DType[] BY_VALUE = byValue();

  private static DType[] byValue() {
    int max = 0;
    for (DType d : values()) max = Math.max(max, d.scalarType.value);
    DType[] table = new DType[max + 1];
    for (DType d : values()) table[d.scalarType.value] = d;
    return table;
  }

  /** Maps a (possibly non-canonical) native scalar type by its value. */
  static DType of(ScalarType st) {
    int v = st.value;
    DType d = v >= 0 && v < BY_VALUE.length ? BY_VALUE[v] : null;
    if (d == null) throw new IllegalArgumentException("unsupported scalar type " + st);
    return d;
  }

  /** The safetensors header name ({@code "BF16"}); returns null for an unknown name. */
  public static DType fromSafetensors(String name) {
    for (DType d : values()) {
      if (d.name().equals(name)) return d;
    }
    return null;
  }

  /** HF {@code torch_dtype} strings: {@code float32}, {@code bfloat16}, {@code float16}. */
  public static DType fromHf(String name) {
    return switch (name.toLowerCase(Locale.ROOT).replace("torch.", "")) {
      case "float32", "float", "fp32" -> F32;
      case "bfloat16", "bf16" -> BF16;
      case "float16", "half", "fp16" -> F16;
      case "float64", "double" -> F64;
      default -> throw new IllegalArgumentException("unknown dtype '" + name + "'");
    };
  }

  /** The HF {@code torch_dtype} string for floating types. */
  public String hfName() {
    return switch (this) {
      case F32 -> "float32";
      case BF16 -> "bfloat16";
      case F16 -> "float16";
      case F64 -> "float64";
      default -> throw new IllegalStateException(this + " has no HF dtype name");
    };
  }
}
