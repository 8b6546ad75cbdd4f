package dev.hanlin.train.task;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.DataException;
import dev.hanlin.data.sft.SftCollator;
import dev.hanlin.data.sft.SftDataset;
import dev.hanlin.data.sft.SftLoader;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.LoraAdapters;
import dev.hanlin.model.PeftAdapter;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.Evaluator;
import dev.hanlin.train.PretrainConfig;
import dev.hanlin.train.metrics.EvalMetrics;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Instruction tuning ({@code --mode sft}): samples read and tokenized in memory (once the block
 * size is known), their loader and evaluation batches; only response tokens are trained, so the
 * loss's divisor is summed over the ranks.
 */
final class SftTask implements Task {
  private final PretrainConfig cfg;
  private final Tokenizer tokenizer;
  private final PrintStream err;
  private SftDataset train, validation;
  private List<SftCollator.Arrays> evalBatches;
  private int loadedFor = -1;

  private SftTask(PretrainConfig cfg, Tokenizer tokenizer, PrintStream err) {
    this.cfg = cfg;
    this.tokenizer = tokenizer;
    this.err = err;
  }

  static SftTask open(PretrainConfig cfg, Tokenizer tokenizer, PrintStream err) {
    if (cfg.trainFiles().isEmpty())
      throw new IllegalArgumentException("--mode sft needs 'train_files' (jsonl, json or csv)");
    return new SftTask(cfg, tokenizer, err);
  }

  private SftCollator collator(int block) {
    return new SftCollator(0, cfg.sft().padToMultipleOf(), block, cfg.sft().packing());
  }

  /** Reads and tokenizes the files, samples cut to {@code block} tokens; reports the counts. */
  private void load(int block) throws IOException {
    if (loadedFor == block) return;
    SftDataset all = SftDataset.load(paths(cfg.trainFiles()), tokenizer, cfg.sft(), block);
    err.println("sft train files: " + all.stats().summary());
    if (!cfg.validationFiles().isEmpty()) {
      train = all;
      validation = SftDataset.load(paths(cfg.validationFiles()), tokenizer, cfg.sft(), block);
      err.println("sft validation files: " + validation.stats().summary());
    } else {
      SftDataset[] parts = all.split(cfg.validationSplitPercentage(), cfg.seed());
      train = parts[0];
      validation = parts[1];
      if (validation != null)
        err.printf(
            "sft split: %,d training and %,d validation samples%n",
            train.size(), validation.size());
    }
    // HF's max_train_samples / max_eval_samples: the first N samples of each split
    train = head(train, cfg.maxTrainSamples());
    validation = head(validation, cfg.maxEvalSamples());
    evalBatches =
        validation == null
            ? null
            : SftLoader.inOrder(validation, cfg.evalBatchSize(), collator(block));
    loadedFor = block;
  }

  private static SftDataset head(SftDataset d, Long n) {
    if (d == null || n == null || d.size() <= n) return d;
    SftDataset.Stats s = d.stats();
    return SftDataset.of(d.examples().subList(0, n.intValue()), s.truncated(), s.dropped());
  }

  private static List<Path> paths(List<String> files) {
    return files.stream().map(Path::of).toList();
  }

  @Override
  public SftLoader loader(int block, Group group, Device device, Cursor start) throws IOException {
    load(block);
    try {
      return SftLoader.training(
          train,
          cfg.trainBatchSize(),
          cfg.seed(),
          cfg.sft().groupByLength(),
          collator(block),
          device,
          group.dist().rank(),
          group.dist().worldSize(),
          start);
    } catch (DataException e) {
      throw new DataException(e.getMessage() + " (per_device_train_batch_size x ranks)", e);
    }
  }

  /** Samples differ in their response tokens: the divisor is summed over the ranks. */
  @Override
  public double globalLabelled(long labelled, Group group) {
    return group.sum(labelled)[0];
  }

  @Override
  public Optional<EvalMetrics> evaluate(
      LlamaModel model, int block, Device device, boolean bf16, long step) {
    if (evalBatches == null) return Optional.empty();
    return Optional.of(
        Evaluator.evaluate(
            model,
            evalBatches,
            cfg.maxEvalBatches(),
            device,
            bf16,
            step,
            cfg.lossChunkRows(device)));
  }

  /** The run's result for a LoRA run: the adapter in PEFT's layout. */
  static void exportAdapter(LoraAdapters a, PretrainConfig cfg, Path out) throws IOException {
    String base = cfg.modelNameOrPath() != null ? cfg.modelNameOrPath() : cfg.modelConfig();
    PeftAdapter.save(a, out, base);
  }
}
