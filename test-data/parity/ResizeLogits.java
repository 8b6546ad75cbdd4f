import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.*;
import dev.hanlin.torch.safetensors.SafetensorsWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Hanlin's logits of a resize-vocab folder for text the extended tokenizer encodes with new pieces. */
public class ResizeLogits {
  public static void main(String[] a) throws Exception {
    Path dir = Path.of(a[0]);
    LlamaModel m = HfCheckpoint.load(dir, DType.F32, Device.CPU);
    Tokenizer tok = Tokenizer.load(dir);
    StringBuilder text = new StringBuilder(a[1]);
    for (int k = 0; k < 300; k += 15) text.append(tok.decode(new int[] {4000 + k}));
    int[] ids = tok.encode(text.toString(), true, false);
    int fresh = 0;
    for (int id : ids) if (id >= 4000) fresh++;
    System.out.println("ids " + java.util.Arrays.toString(ids) + " new pieces: " + fresh);
    long[] l = new long[ids.length];
    for (int i = 0; i < ids.length; i++) l[i] = ids[i];
    try (Scope s = Scope.open(); Grad.Guard ng = Grad.inference()) {
      Tensor t = Torch.fromLongs(l, 1, ids.length);
      Map<String, Tensor> out = new LinkedHashMap<>();
      out.put("input_ids", t);
      out.put("logits", m.forward(t, null));
      SafetensorsWriter.write(dir.resolve("hanlin_logits.safetensors"), out);
    }
  }
}
