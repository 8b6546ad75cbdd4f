package dev.hanlin.train;

import dev.hanlin.data.loader.BlockSize;
import dev.hanlin.data.sft.SftCollator;
import dev.hanlin.data.sft.SftDataset;
import dev.hanlin.data.sft.SftLoader;
import dev.hanlin.data.sft.SftOptions;
import dev.hanlin.data.shard.TokenDataset;
import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.PeftAdapter;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.train.metrics.EvalMetrics;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;

/**
 * A model (with a LoRA adapter, unmerged) evaluated outside training, what {@code --mode eval}
 * does: loss, perplexity and token accuracy on prepared pretraining data, or on instruction-tuning
 * records where only the response tokens count, as a SFT run evaluates.
 *
 * @param model the HF model folder, loaded in float32
 * @param adapter a PEFT adapter folder to apply, or null
 * @param tokenizer the tokenizer the data must have been made with (prepared data) or is encoded
 *     with (records); null: the prepared data is not checked
 * @param blockSize tokens per block; null: min(1024, the model's maximum positions)
 * @param batchSize blocks per batch
 * @param maxBatches stop after this many batches; 0: all
 */
public record EvalRun(
    Path model,
    Path adapter,
    Tokenizer tokenizer,
    Integer blockSize,
    int batchSize,
    long maxBatches,
    Device device) {

  /** What to evaluate on. */
  public sealed interface Data {}

  /** A split ({@code train} or {@code validation}) of a prepared dataset folder. */
  public record Prepared(Path dir, String split) implements Data {}

  /** Instruction-tuning files read as {@code options} say. */
  public record Records(List<Path> files, SftOptions options) implements Data {}

  /** Evaluates on {@code data}; the records' statistics go to {@code log}. */
  public EvalMetrics evaluate(Data data, PrintStream log) throws IOException {
    LlamaModel m = HfCheckpoint.load(model, DType.F32, device);
    if (adapter != null) m = PeftAdapter.loadOnto(adapter, m, device);
    int block = BlockSize.resolve(blockSize, m.config().maxPositionEmbeddings());
    boolean cuda = device.isCuda();
    return switch (data) {
      case Records r -> {
        SftDataset ds = SftDataset.load(r.files(), tokenizer, r.options(), block);
        log.println(ds.stats().summary());
        var collator = new SftCollator(0, r.options().padToMultipleOf(), block, false);
        List<SftCollator.Arrays> batches = SftLoader.inOrder(ds, batchSize, collator);
        yield Evaluator.evaluate(m, batches, maxBatches, device, cuda, 0, 0);
      }
      case Prepared p -> {
        String fingerprint = tokenizer == null ? null : tokenizer.fingerprint();
        try (TokenDataset ds = TokenDataset.open(p.dir(), p.split(), fingerprint)) {
          yield Evaluator.evaluate(m, ds, block, batchSize, maxBatches, device, cuda, 0, 0);
        }
      }
    };
  }
}
