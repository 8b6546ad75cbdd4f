package dev.hanlin.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.data.sft.SftOptions;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.train.EvalRun;
import dev.hanlin.train.metrics.EvalMetrics;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
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
  @Mixin ModelOptions model;
  @Mixin DeviceOptions device;

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

  @Option(
      names = "--split",
      defaultValue = "validation",
      description = "train or validation (default ${DEFAULT-VALUE}).")
  String split;

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

  @Option(names = "--json", description = "Print the metrics as one JSON object.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    boolean records = sftData != null && !sftData.isEmpty();
    if ((data != null) == records) // both or neither
    throw new IllegalArgumentException("give either --data (prepared) or --sft-data (records)");
    EvalRun.Data on;
    Tokenizer tok;
    if (records) {
      SftOptions o =
          SftOptions.DEFAULT
              .withFormat(sftFormat)
              .withPromptField(promptField)
              .withResponseField(responseField);
      on = new EvalRun.Records(sftData, o);
      tok = Tokenizer.load(model.tokenizerPath());
    } else {
      on = new EvalRun.Prepared(data, split);
      tok = model.tokenizerIfAny();
    }
    var run =
        new EvalRun(
            model.model, model.adapter, tok, blockSize, batchSize, maxBatches, device.device());
    EvalMetrics r = run.evaluate(on, System.err);
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
