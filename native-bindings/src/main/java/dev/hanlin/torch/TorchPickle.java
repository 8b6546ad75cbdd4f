package dev.hanlin.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.pytorch.ByteVector;
import org.bytedeco.pytorch.GenericDict;
import org.bytedeco.pytorch.GenericDictIterator;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.global.torch;

/**
 * PyTorch {@code torch.save} state dicts ({@code pytorch_model.bin}), read by libtorch's own
 * unpickler ({@code torch::pickle_load}). That unpickler only rebuilds tensors and containers; it
 * has no way to import or call arbitrary Python, so a hostile file cannot run code.
 */
public final class TorchPickle {
  private TorchPickle() {}

  private static String firstLine(String s) {
    if (s == null) return "unknown error";
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  /** Name to tensor (owning copies, on the CPU) in file order. */
  public static Map<String, Tensor> loadStateDict(Path file) throws IOException {
    byte[] bytes = Files.readAllBytes(file);
    Map<String, Tensor> out = new LinkedHashMap<>();
    try (Scope s = Scope.open()) {
      IValue v;
      try {
        v = torch.pickle_load(new ByteVector(bytes));
      } catch (RuntimeException e) {
        throw new IOException(
            file
                + ": libtorch's unpickler cannot read this checkpoint ("
                + firstLine(e.getMessage())
                + "); convert it to safetensors, e.g. in Python: "
                + "AutoModelForCausalLM.from_pretrained(d).save_pretrained(d, safe_serialization=True)",
            e);
      }
      if (!v.isGenericDict())
        throw new IOException(file + ": expected a dict of tensors at the top level");
      GenericDict d = v.toGenericDict();
      GenericDictIterator end = d.end();
      for (GenericDictIterator it = d.begin(); !it.equals(end); it.increment()) {
        IValue k = it.access().key(), t = it.access().value();
        if (!k.isString() || !t.isTensor())
          throw new IOException(file + ": entries must map names to tensors");
        String name = k.toStringRef().getString();
        out.put(name, new Tensor(t.toTensor()).copy().retain());
      }
    }
    return out;
  }
}
