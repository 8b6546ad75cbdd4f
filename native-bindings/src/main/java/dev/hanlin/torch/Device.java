package dev.hanlin.torch;

import org.bytedeco.pytorch.global.torch.DeviceType;

/** A compute device: the CPU or one CUDA card. */
public record Device(Kind kind, int index) {
  /** Device families Hanlin runs on. */
  public enum Kind {
    CPU,
    CUDA
  }

  public static final Device CPU = new Device(Kind.CPU, -1);

  public Device {
    if (kind == Kind.CUDA && index < 0) throw new IllegalArgumentException("CUDA needs an index");
  }

  public static Device cuda(int index) {
    return new Device(Kind.CUDA, index);
  }

  /** {@code cpu}, {@code cuda}, {@code cuda:1}; {@code auto} picks CUDA 0 when available. */
  public static Device parse(String s) {
    return switch (s) {
      case "cpu" -> CPU;
      case "cuda" -> cuda(0);
      case "auto" -> Torch.cudaAvailable() ? cuda(0) : CPU;
      default -> {
        if (s.startsWith("cuda:")) yield cuda(Integer.parseInt(s.substring(5)));
        throw new IllegalArgumentException("unknown device '" + s + "' (cpu, cuda, cuda:N, auto)");
      }
    };
  }

  public boolean isCuda() {
    return kind == Kind.CUDA;
  }

  /** The native device, shared (see {@link Natives}): pass it to libtorch, never modify it. */
  org.bytedeco.pytorch.Device toNative() {
    return Natives.device(this);
  }

  static Device of(org.bytedeco.pytorch.Device d) {
    return d.type().value == DeviceType.CUDA.value ? cuda(d.index()) : CPU;
  }

  DeviceType deviceType() {
    return kind == Kind.CPU ? DeviceType.CPU : DeviceType.CUDA;
  }

  @Override
  public String toString() {
    return kind == Kind.CPU ? "cpu" : "cuda:" + index;
  }
}
