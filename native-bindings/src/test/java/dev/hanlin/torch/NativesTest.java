package dev.hanlin.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.TensorOptions;
import org.junit.jupiter.api.Test;

/** The shared native arguments of {@link Natives} and the JavaCPP settings the facade applies. */
class NativesTest {
  @Test
  void sharedArgumentsSurviveTheScopeOfTheirFirstUse() {
    // Values no other test uses, so that this scope is where they are first made.
    double eps = 1.234567e-7;
    Device unusedCard = Device.cuda(7);
    DoubleOptional first;
    TensorOptions options;
    Scalar scalar;
    try (Scope s = Scope.open()) {
      first = Natives.optional(eps);
      options = Natives.options(DType.F64, unusedCard);
      scalar = Natives.scalar(eps);
    }
    assertFalse(first.isNull(), "closing the scope of the first use must not free a shared one");
    assertFalse(options.isNull());
    assertFalse(scalar.isNull());
    assertSame(scalar, Natives.scalar(eps));
    assertSame(first, Natives.optional(eps));
    assertSame(options, Natives.options(DType.F64, unusedCard));
    try (Scope s = Scope.open()) {
      Tensor x = Torch.fromFloats(new float[] {3, 4}, 1, 2);
      float[] y = Torch.rmsNorm(x, eps).toFloatArray();
      double rms = Math.sqrt((9 + 16) / 2.0 + eps);
      assertArrayEquals(new float[] {(float) (3 / rms), (float) (4 / rms)}, y, 1e-6f);
      assertArrayEquals(
          new float[] {0, 0, 0}, Torch.zeros(DType.F64, Device.CPU, 3).toFloatArray(), 0f);
      assertEquals(DType.F64, Torch.zeros(DType.F64, Device.CPU, 3).dtype());
      assertEquals(2 * eps, Torch.full(eps, DType.F64, Device.CPU, 1).mul(2.0).item());
    }
  }

  @Test
  void theFacadeTurnsJavaCppsPerObjectResidentSizeCheckOff() throws Exception {
    assertEquals("0", settingsOfAFreshJvm(), "the facade's default");
    assertEquals(
        String.valueOf(1L << 30),
        settingsOfAFreshJvm("-Dorg.bytedeco.javacpp.maxPhysicalBytes=1g"),
        "a value the user passes wins");
  }

  /** Pointer.maxPhysicalBytes() of a new JVM whose first native call goes through the facade. */
  private static String settingsOfAFreshJvm(String... jvmArgs)
      throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElseThrow());
    cmd.add("--enable-native-access=ALL-UNNAMED");
    cmd.addAll(List.of(jvmArgs));
    cmd.addAll(
        List.of("-cp", System.getProperty("java.class.path"), PrintSettings.class.getName()));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    assertEquals(0, p.waitFor(), out);
    String[] lines = out.split("\n");
    return lines[lines.length - 1].trim();
  }

  /** Run in a fresh JVM by the test above. */
  static final class PrintSettings {
    public static void main(String[] args) {
      Torch.zeros(DType.F32, Device.CPU, 1);
      System.out.println(Pointer.maxPhysicalBytes());
    }
  }
}
