import dev.hanlin.model.*;
import dev.hanlin.torch.*;
import java.nio.file.*;
import java.security.MessageDigest;

/**
 * Prints a digest of the model's outputs on the parity models of test-data: logits (plain, packed,
 * bf16-cast, KV-cached, slot-cached), LoRA loss and gradients with dropout, and merged logits. Run
 * against two builds, equal lines mean bitwise-equal behaviour (bench/model-equivalence.sh). Uses
 * only API both the build before issue 14's model change and the one after have.
 */
public class ModelOutputs {
  static MessageDigest md;
  static void put(String what, Tensor t) {
    float[] f = t.detach().toFloat().contiguous().toFloatArray();
    java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(f.length * 4);
    for (float x : f) b.putFloat(x);
    md.update(b.array());
    System.out.println(what + " " + f.length + " " + f[0] + " " + f[f.length - 1]);
  }
  public static void main(String[] a) throws Exception {
    md = MessageDigest.getInstance("SHA-256");
    Path root = Path.of(a[0]);
    Tensor ids = Torch.fromLongs(new long[] {5, 9, 33, 7, 81, 12, 3, 44, 100, 2, 60, 61}, 2, 6).retain();
    Tensor pos = Torch.fromLongs(new long[] {0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 4, 5}, 2, 6).retain();
    Tensor seg = Torch.fromLongs(new long[] {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, 2, 6).retain();
    Tensor tg = Torch.fromLongs(new long[] {9, 33, 7, 81, 12, -100, 44, 100, 2, 60, 61, 70}, 12).retain();
    for (String n : new String[] {"gqa", "tied", "headdim_bias", "mha", "llama3"}) {
      LlamaModel m = HfCheckpoint.load(root.resolve(n), DType.F32, Device.CPU);
      try (Scope s = Scope.open()) {
        put(n + " fwd", m.forward(ids, null));
        put(n + " packed", m.forwardPacked(ids, pos, seg));
        put(n + " bf16", m.withDtype(DType.BF16).forward(ids, null));
        KvCache c = new KvCache(m.config(), 1, 16, DType.F32, Device.CPU);
        put(n + " kv0", m.forward(ids.narrow(0, 0, 1), c));
        put(n + " kv1", m.forward(Torch.fromLongs(new long[] {17}, 1, 1), c));
        put(n + " kv2", m.forward(Torch.fromLongs(new long[] {18}, 1, 1), c));
        c.free();
        SlotKvCache sc = new SlotKvCache(m.config(), 3, 16, DType.F32, Device.CPU);
        put(n + " slot0", m.forwardSlots(ids.narrow(0, 0, 1), new long[] {0, 1, 2, 3, 4, 5}, new long[] {1}, sc));
        put(n + " slot1", m.forwardSlots(ids.narrow(0, 1, 1), new long[] {0, 1, 2, 3, 4, 5}, new long[] {2}, sc));
        put(n + " slot2", m.forwardSlots(Torch.fromLongs(new long[] {17, 19}, 2, 1), new long[] {6, 6}, new long[] {1, 2}, sc));
        sc.free();
      }
      LoraAdapters ad = LoraAdapters.init(m, new LoraConfig(4, 8.0, 0.1, null, null, null), 3);
      for (Tensor t : ad.weights().values()) t.requiresGrad(true);
      // make B nonzero so the update shows
      try (Scope s = Scope.open(); Grad.Guard g = Grad.noGrad()) {
        ad.weights().forEach((k, v) -> { if (k.endsWith("lora_B.weight")) v.fill_(0.01); });
      }
      LlamaModel lm = ad.applyTo(m);
      for (boolean packed : new boolean[] {false, true}) {
        Torch.manualSeed(11);
        try (Scope s = Scope.open()) {
          Tensor logits = packed ? lm.forwardPacked(ids, pos, seg) : lm.forward(ids, null);
          Tensor loss = Torch.crossEntropy(logits.reshape(-1, logits.size(-1)), tg);
          loss.backward();
          put(n + " lora loss " + packed, loss);
          for (var e : ad.weights().entrySet()) { put(n + " g " + e.getKey(), e.getValue().grad()); e.getValue().clearGrad(); }
        }
      }
      try (Scope s = Scope.open(); Grad.Guard g = Grad.noGrad()) {
        put(n + " merged", ad.merge(m).forward(ids, null));
      }
    }
    StringBuilder h = new StringBuilder();
    for (byte b : md.digest()) h.append(String.format("%02x", b));
    System.out.println("SHA " + h);
  }
}
