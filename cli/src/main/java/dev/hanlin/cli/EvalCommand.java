package dev.hanlin.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
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
import dev.hanlin.train.Evaluator;
import dev.hanlin.train.metrics.EvalMetrics;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code --mode eval}: loss, perplexity and token accuracy of a model (optionally with a LoRA
 * adapter) on prepared pretraining data or on instruction-tuning records, where only the response
 * tokens count (labels -100 elsewhere), as {@code --mode sft} evaluates.
 */
@Command(
    name = "eval",
    mixinStandardHelpOptions = true,
    description =
        "Evaluate an HF model folder (and adapter) on a prepared dataset or SFT records (loss,"
            + " perplexity, accuracy).")
final class EvalCommand implements Callable<Integer> {
  @Option(names = "--model", required = true, description = "HF model folder.")
  Path model;

  @Option(names = "--data", description = "Prepared dataset folder (--mode prepare).")
  Path data;

  @Option(
      names = "--sft-data",
      split = ",",
      description =
          "Instruction-tuning files (jsonl, json, csv) instead of --data: the response"
              + " tokens are scored, as --mode sft evaluates.")
  List<Path> sftData;

  @Option(
      names = "--sft-format",
      defaultValue = "prompt_response",
      description = "text, prompt_response, chat or alpaca (default ${DEFAULT-VALUE}).")
  String sftFormat;

  @Option(
      names = "--prompt-field",
      defaultValue = "input",
      description = "prompt_response: the prompt's field (default ${DEFAULT-VALUE}).")
  String promptField;

  @Option(
      names = "--response-field",
      defaultValue = "target",
      description = "prompt_response: the response's field (default ${DEFAULT-VALUE}).")
  String responseField;

  @Option(names = "--adapter", description = "A PEFT LoRA adapter folder to apply to the model.")
  Path adapter;

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
    if ((data == null) == (sftData == null || sftData.isEmpty()))
      throw new IllegalArgumentException("give either --data (prepared) or --sft-data (records)");
    Device dev = Device.parse(device);
    LlamaModel m = HfCheckpoint.load(model, DType.F32, dev);
    if (adapter != null) m = PeftAdapter.loadOnto(adapter, m, dev);
    Path tok = tokenizer != null ? tokenizer : tokenizerFolder();
    String fingerprint =
        tokenizer != null || Tokenizer.isIn(tok) ? Tokenizer.load(tok).fingerprint() : null;
    int block = BlockSize.resolve(blockSize, m.config().maxPositionEmbeddings());
    EvalMetrics r;
    if (sftData != null && !sftData.isEmpty()) {
      SftOptions o =
          SftOptions.DEFAULT
              .withFormat(sftFormat)
              .withPromptField(promptField)
              .withResponseField(responseField);
      SftDataset ds = SftDataset.load(sftData, Tokenizer.load(tok), o, block);
      System.err.println(ds.stats().summary());
      List<SftCollator.Arrays> batches =
          SftLoader.inOrder(ds, batchSize, new SftCollator(0, o.padToMultipleOf(), block, false));
      r = Evaluator.evaluate(m, batches, maxBatches, dev, dev.isCuda(), 0);
    } else {
      try (TokenDataset ds = TokenDataset.open(data, split, fingerprint)) {
        r = Evaluator.evaluate(m, ds, block, batchSize, maxBatches, dev, dev.isCuda(), 0);
      }
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

  /** The adapter's tokenizer when it has one (a run on an extended vocabulary saves it there). */
  private Path tokenizerFolder() {
    return Tokenizer.isIn(adapter) ? adapter : model;
  }
}
