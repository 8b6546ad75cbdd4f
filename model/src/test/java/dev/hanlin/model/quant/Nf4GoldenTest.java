package dev.hanlin.model.quant;

import static dev.hanlin.model.quant.Nf4ReferenceTest.assertBits;
import static dev.hanlin.model.quant.Nf4ReferenceTest.bytes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Nf4Weight against goldens made outside Java by test-data/quant/make_bnb_goldens.py: the numpy
 * port of bitsandbytes' CUDA kernels (always present, exact in every part) and, where the script
 * ran with bitsandbytes, bitsandbytes' own quantize_4bit/dequantize_4bit (exact in every part but
 * the offset, which bitsandbytes takes as a float32 mean; the second level is then checked from
 * bitsandbytes' own offset).
 */
class Nf4GoldenTest {

  static Path dir() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      Path d = p.resolve("test-data").resolve("quant");
      if (Files.isDirectory(d)) return d;
    }
    throw new IllegalStateException("test-data/quant not found above " + Path.of(""));
  }

  @Test
  void equalsTheNumpyPortOfBitsandbytes() throws Exception {
    check(dir().resolve("numpy_nf4.safetensors"), true);
  }

  @Test
  void equalsBitsandbytes() throws Exception {
    Path file = dir().resolve("bnb_nf4.safetensors");
    Assumptions.assumeTrue(
        Files.exists(file),
        "skipped: "
            + file
            + " is absent; run test-data/quant/make_bnb_goldens.py --source bnb where"
            + " bitsandbytes imports (a CUDA machine) to make it");
    check(file, false);
  }

  static void check(Path file, boolean exactOffset) throws Exception {
    try (SafetensorsFile f = SafetensorsFile.open(file);
        Scope s = Scope.open()) {
      String source = f.metadata().toString();
      assertBits(f.load("plain.code").toFloatArray(), Codebooks.DYNAMIC, "dynamic map " + source);
      Codebooks.Tables tables = Codebooks.on(Device.CPU);
      for (String c : f.metadata().get("cases").split(",")) {
        String at = file.getFileName() + " " + c + " (" + source + ")";
        Tensor w = f.load(c + ".weight");
        Nf4Weight.FirstLevel first = Nf4Weight.FirstLevel.of(w.raw(), tables);
        assertArrayEquals(bytes(f.load(c + ".codes")), bytes(Tensor.wrap(first.packed())), at);
        assertBits(
            f.load(c + ".absmax").toFloatArray(),
            Tensor.wrap(first.absmax()).toFloatArray(),
            at + " absmax");

        float offset = f.load(c + ".offset").toFloatArray()[0];
        try (Nf4Weight q = Nf4Weight.quantize(w)) {
          float ours = q.offset();
          if (exactOffset) {
            assertBits(new float[] {offset}, new float[] {ours}, at + " offset");
          } else {
            float ulps = Math.abs(ours - offset) / Math.ulp(offset);
            System.out.printf(
                "%s: offset %s vs bitsandbytes %s (%.0f ulp)%n", at, ours, offset, ulps);
            assertTrue(ulps <= 8, at + ": offset " + ours + " vs " + offset);
          }
        }
        // the second level and the values, from the golden's own offset
        DoubleQuant dq = DoubleQuant.of(first.absmax(), tables, offset);
        assertArrayEquals(
            bytes(f.load(c + ".absmax_codes")), bytes(Tensor.wrap(dq.codes())), at + " codes2");
        assertBits(
            f.load(c + ".absmax2").toFloatArray(),
            Tensor.wrap(dq.absmax2()).toFloatArray(),
            at + " absmax2");
        try (Nf4Weight q = Nf4Weight.of(w.shape(), first.packed(), dq)) {
          assertBits(
              f.load(c + ".dequantized").toFloatArray(),
              q.dequantize(DType.F32).toFloatArray(),
              at + " dequantized");
        }
        if (f.contains(c + ".dequantized_bf16")) {
          Tensor wb = w.to(DType.BF16);
          Nf4Weight.FirstLevel fb = Nf4Weight.FirstLevel.of(wb.raw(), tables);
          float ob = f.load(c + ".offset_bf16").toFloatArray()[0];
          try (Nf4Weight q =
              Nf4Weight.of(wb.shape(), fb.packed(), DoubleQuant.of(fb.absmax(), tables, ob))) {
            assertBits(
                f.load(c + ".dequantized_bf16").toFloatArray(),
                q.dequantize(DType.BF16).toFloatArray(),
                at + " dequantized bf16");
          }
        }
      }
    }
  }
}
