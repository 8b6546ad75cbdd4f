package dev.hanlin.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import org.junit.jupiter.api.Test;

/** Packed rows: each sample's logits equal those of the sample run alone. */
class PackedForwardTest {
  @Test
  void packedSamplesDoNotSeeEachOther() throws Exception {
    LlamaModel m = HfCheckpoint.load(TestData.dir("parity").resolve("gqa"), DType.F32, Device.CPU);
    long[] a = {1, 17, 99, 250, 3}, b = {1, 44, 45, 46, 300, 301, 7};
    // row: a | b | 4 padding tokens (their own segment)
    long[] ids = new long[16], pos = new long[16], seg = new long[16];
    int at = 0;
    long[][] parts = {a, b, {0, 0, 0, 0}};
    for (int s = 0; s < parts.length; s++)
      for (int i = 0; i < parts[s].length; i++, at++) {
        ids[at] = parts[s][i];
        pos[at] = i;
        seg[at] = s;
      }
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.inference()) {
      Tensor packed =
          m.forwardPacked(
              Torch.fromLongs(ids, 1, 16),
              Torch.fromLongs(pos, 1, 16),
              Torch.fromLongs(seg, 1, 16));
      Tensor la = m.forward(Torch.fromLongs(a, 1, a.length), null);
      Tensor lb = m.forward(Torch.fromLongs(b, 1, b.length), null);
      double da = packed.narrow(1, 0, a.length).sub(la).abs().max().item();
      double db = packed.narrow(1, a.length, b.length).sub(lb).abs().max().item();
      assertTrue(da < 1e-5 && db < 1e-5, "packed differs from alone: " + da + ", " + db);
      assertTrue(Double.isFinite(packed.abs().max().item()), "padding rows must stay finite");
    }
  }
}
