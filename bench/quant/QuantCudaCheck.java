import dev.hanlin.model.quant.Int8Weight;
import dev.hanlin.model.quant.Nf4Weight;
import dev.hanlin.model.quant.QuantizedWeight;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.Arrays;

/**
 * QuantCudaTest without JUnit, for the GPU machine (which has no test runner): the NF4 and int8
 * codecs give the same bits on CUDA as on the CPU. Prints one line per shape and ALL EQUAL or
 * DIFFERENT; exits 1 on a difference. Built and run by bench/gpu-session-3.sh's quant call.
 */
public final class QuantCudaCheck {
  public static void main(String[] args) {
    Device cuda = Device.cuda(0);
    long[][] shapes = {{64}, {7}, {37, 101}, {300, 257}, {4096, 1024}, {11008, 4096}};
    boolean ok = true;
    for (long[] shape : shapes) {
      try (Scope s = Scope.open()) {
        Tensor w = Torch.randn(Generator.cpu(shape.length * 31L + shape[0]), DType.F32, Device.CPU, shape);
        boolean same;
        try (Nf4Weight c = (Nf4Weight) QuantizedWeight.quantize(w, 4);
            Nf4Weight g = (Nf4Weight) QuantizedWeight.quantize(w.to(cuda), 4)) {
          same =
              Arrays.equals(c.codes().toLongArray(), g.codes().toLongArray())
                  && Arrays.equals(c.absmaxCodes().toLongArray(), g.absmaxCodes().toLongArray())
                  && bits(c.absmax2().toFloatArray(), g.absmax2().toFloatArray())
                  && Float.floatToRawIntBits(c.offset()) == Float.floatToRawIntBits(g.offset())
                  && bits(c.dequantize(DType.F32).toFloatArray(), g.dequantize(DType.F32).toFloatArray())
                  && bits(c.dequantize(DType.BF16).toFloatArray(), g.dequantize(DType.BF16).toFloatArray());
        }
        try (Int8Weight c = (Int8Weight) QuantizedWeight.quantize(w, 8);
            Int8Weight g = (Int8Weight) QuantizedWeight.quantize(w.to(cuda), 8)) {
          same &=
              Arrays.equals(c.codes().toLongArray(), g.codes().toLongArray())
                  && bits(c.dequantize(DType.F32).toFloatArray(), g.dequantize(DType.F32).toFloatArray());
        }
        System.out.println(Arrays.toString(shape) + (same ? ": same bits" : ": DIFFERENT"));
        ok &= same;
      }
    }
    System.out.println(ok ? "ALL EQUAL (CUDA vs CPU, NF4 and int8)" : "DIFFERENT");
    System.exit(ok ? 0 : 1);
  }

  private static boolean bits(float[] a, float[] b) {
    if (a.length != b.length) return false;
    for (int i = 0; i < a.length; i++)
      if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) return false;
    return true;
  }
}
