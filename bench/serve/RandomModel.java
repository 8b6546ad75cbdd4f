import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes an HF model folder with random weights of a given shape (a config.json) and a tokenizer,
 * for serving benchmarks where only the shape matters. Run with the source launcher:
 * {@code java -cp "cli/target/trainer.jar:cli/target/lib/*" bench/serve/RandomModel.java CONFIG
 * TOKENIZER OUT_DIR [float32|bfloat16]}.
 */
public class RandomModel {
  public static void main(String[] a) throws Exception {
    LlamaConfig c = LlamaConfig.read(Path.of(a[0]));
    DType dt = a.length > 3 ? DType.fromHf(a[3]) : DType.F32;
    Path out = Path.of(a[2]);
    HfCheckpoint.save(LlamaModel.init(c, 1, dt, Device.CPU), out, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES);
    Files.copy(Path.of(a[1]), out.resolve("tokenizer.model"), StandardCopyOption.REPLACE_EXISTING);
    System.out.println("random " + a[0] + " model in " + out);
  }
}
