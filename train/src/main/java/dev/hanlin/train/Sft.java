package dev.hanlin.train;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.DataException;
import dev.hanlin.data.sft.SftCollator;
import dev.hanlin.data.sft.SftDataset;
import dev.hanlin.data.sft.SftLoader;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.LoraAdapters;
import dev.hanlin.model.PeftAdapter;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.train.metrics.EvalMetrics;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What {@code --mode sft} adds to the training engine: samples read and tokenized in memory (once
 * the block size is known), their loader and evaluation batches, and LoRA (a frozen base, bf16 on
 * CUDA, with trainable adapters and modules to save).
 */
final class Sft {
  private final PretrainConfig cfg;
  private final Tokenizer tokenizer;
  private final PrintStream err;
  private SftDataset train, validation;
  private List<SftCollator.Arrays> evalBatches;
  private int loadedFor = -1;

  private Sft(PretrainConfig cfg, Tokenizer tokenizer, PrintStream err) {
    this.cfg = cfg;
    this.tokenizer = tokenizer;
    this.err = err;
  }

  static Sft open(PretrainConfig cfg, Tokenizer tokenizer, PrintStream err) {
    if (cfg.trainFiles().isEmpty())
      throw new IllegalArgumentException("--mode sft needs 'train_files' (jsonl, json or csv)");
    return new Sft(cfg, tokenizer, err);
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

  SftLoader loader(PretrainConfig c, int block, int rank, int world, Device device, Cursor start)
      throws IOException {
    load(block);
    try {
      return SftLoader.training(
          train,
          c.trainBatchSize(),
          c.seed(),
          c.sft().groupByLength(),
          collator(block),
          device,
          rank,
          world,
          start);
    } catch (DataException e) {
      throw new DataException(e.getMessage() + " (per_device_train_batch_size x ranks)", e);
    }
  }

  Optional<EvalMetrics> evaluate(
      LlamaModel model, PretrainConfig c, int block, Device device, boolean bf16, long step) {
    if (evalBatches == null) return Optional.empty();
    return Optional.of(
        Evaluator.evaluate(model, evalBatches, c.maxEvalBatches(), device, bf16, step));
  }

  /**
   * The base model frozen (and cast to bf16 when training on CUDA in bf16) with LoRA adapters:
   * fresh ones, or those of the checkpoint being resumed.
   */
  LlamaModel withLora(LlamaModel full, Checkpoints.Loaded ck, Device device, boolean bf16) {
    LlamaModel base = full;
    for (Tensor w : full.weights().values()) w.requiresGrad(false);
    if (bf16 && device.isCuda()) {
      Map<String, Tensor> w = new LinkedHashMap<>();
      full.weights().forEach((k, v) -> w.put(k, v.detach().to(DType.BF16).retain()));
      full.weights().values().forEach(Tensor::release);
      base = LlamaModel.fromWeights(full.config().withDtype(DType.BF16), w);
      // the fp32 copy the engine loads first is gone: the peak reported at the end is training's
      dev.hanlin.torch.Cuda.resetPeak(device.index());
    }
    LoraAdapters a =
        ck == null
            ? LoraAdapters.init(base, cfg.lora(), cfg.seed())
            : LoraAdapters.fromWeights(base.config(), cfg.lora(), ck.weights());
    for (Tensor t : a.weights().values()) t.requiresGrad(true);
    long trainable = a.weights().values().stream().mapToLong(Tensor::numel).sum();
    err.printf(
        "LoRA r=%d alpha=%s on %s%s: %,d trainable parameters (%.3f%% of %,d)%n",
        cfg.lora().r(),
        cfg.lora().alpha(),
        cfg.lora().targetModules(),
        cfg.lora().modulesToSave().isEmpty() ? "" : " + " + cfg.lora().modulesToSave(),
        trainable,
        100.0 * trainable / base.config().parameterCount(),
        base.config().parameterCount());
    return a.applyTo(base);
  }

  /** The run's result for a LoRA run: the adapter in PEFT's layout. */
  static void exportAdapter(LoraAdapters a, PretrainConfig cfg, Path out) throws IOException {
    String base = cfg.modelNameOrPath() != null ? cfg.modelNameOrPath() : cfg.modelConfig();
    PeftAdapter.save(a, out, base);
  }
}
