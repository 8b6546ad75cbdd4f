package dev.hanlin.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.data.BlockSize;
import dev.hanlin.data.TokenDataset;
import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.train.Evaluator;
import dev.hanlin.train.metrics.EvalMetrics;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code --mode eval}: loss, perplexity and token accuracy of a model on prepared data. */
@Command(
    name = "eval",
    mixinStandardHelpOptions = true,
    description = "Evaluate an HF model folder on a prepared dataset (loss, perplexity, accuracy).")
final class EvalCommand implements Callable<Integer> {
  @Option(names = "--model", required = true, description = "HF model folder.")
  Path model;

  @Option(
      names = "--data",
      required = true,
      description = "Prepared dataset folder (--mode prepare).")
  Path data;

  @Option(
      names = "--split",
      defaultValue = "validation",
      description = "train or validation (default ${DEFAULT-VALUE}).")
  String split;

  @Option(
      names = "--tokenizer",
      description = "Tokenizer to check the data against (default: the model folder's).")
  Path tokenizer;

  @Option(
      names = "--block-size",
      description = "Tokens per block (default: min(1024, max positions)).")
  Integer blockSize;

  @Option(
      names = "--batch-size",
      defaultValue = "8",
      description = "Blocks per batch (default ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--max-batches",
      defaultValue = "0",
      description = "Stop after this many batches; 0 = all.")
  long maxBatches;

  @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto.")
  String device;

  @Option(names = "--json", description = "Print the metrics as one JSON object.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    Device dev = Device.parse(device);
    LlamaModel m = HfCheckpoint.load(model, DType.F32, dev);
    Path tok = tokenizer != null ? tokenizer : model;
    String fingerprint =
        tokenizer != null
                || Files.exists(model.resolve("tokenizer.model"))
                || Files.exists(model.resolve("tokenizer.json"))
            ? Tokenizer.load(tok).fingerprint()
            : null;
    int block = BlockSize.resolve(blockSize, m.config().maxPositionEmbeddings());
    EvalMetrics r;
    try (TokenDataset ds = TokenDataset.open(data, split, fingerprint)) {
      r = Evaluator.evaluate(m, ds, block, batchSize, maxBatches, dev, dev.isCuda(), 0);
    }
    if (json) {
      var n = new ObjectMapper().createObjectNode();
      n.put("loss", r.loss())
          .put("perplexity", r.perplexity())
          .put("accuracy", r.accuracy())
          .put("tokens", r.tokens());
      System.out.println(n);
    } else {
      System.out.printf(
          "loss %.4f  perplexity %.2f  accuracy %.4f  (%,d tokens)%n",
          r.loss(), r.perplexity(), r.accuracy(), r.tokens());
    }
    return 0;
  }
}
