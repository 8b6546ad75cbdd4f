package dev.hanlin.train.task;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.LabelledBatch;
import dev.hanlin.data.loader.DataLoader;
import dev.hanlin.data.loader.LoaderOptions;
import dev.hanlin.data.prepare.Prepare;
import dev.hanlin.data.prepare.PrepareConfig;
import dev.hanlin.data.shard.TokenDataset;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.Evaluator;
import dev.hanlin.train.PretrainConfig;
import dev.hanlin.train.metrics.EvalMetrics;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * Causal-LM pretraining on prepared token shards ({@code data_dir}, prepared first from {@code
 * train_files} when given): packed blocks, every target trained, so the loss's divisor is known
 * without communication.
 */
final class Pretraining implements Task {
  private final PretrainConfig cfg;
  private final TokenDataset train, validation;

  private Pretraining(PretrainConfig cfg, TokenDataset train, TokenDataset validation) {
    this.cfg = cfg;
    this.train = train;
    this.validation = validation;
  }

  static Pretraining open(PretrainConfig cfg, Tokenizer tokenizer, Group group, PrintStream err)
      throws IOException {
    Path data = Path.of(cfg.dataDir());
    if (!cfg.trainFiles().isEmpty() && group.dist().isMain()) {
      PrepareConfig pc =
          PrepareConfig.of(cfg.tokenizer(), cfg.trainFiles(), cfg.dataDir())
              .withValidationFiles(cfg.validationFiles())
              .withValidationSplitPercentage(cfg.validationSplitPercentage())
              .withSeed(cfg.seed())
              .withTextField(cfg.textField())
              .withMaxTrainSamples(cfg.maxTrainSamples())
              .withMaxEvalSamples(cfg.maxEvalSamples());
      Prepare.Result r = Prepare.run(pc, tokenizer, err);
      err.println(r.summary());
    }
    group.mainDone("prepare", Duration.ofDays(7)); // the others open what the main rank prepared
    TokenDataset train = TokenDataset.open(data, "train", tokenizer.fingerprint());
    // A validation split that cannot be opened (a corrupt shard, another tokenizer's) is an error,
    // as a train shard's is, not a run without evaluation.
    TokenDataset validation;
    try {
      validation = TokenDataset.open(data, "validation", tokenizer.fingerprint());
    } catch (IOException | RuntimeException e) {
      train.close();
      throw e;
    }
    if (validation.tokenCount() == 0) {
      validation.close();
      validation = null;
    }
    return new Pretraining(cfg, train, validation);
  }

  @Override
  public LabelledBatch.Source loader(int block, Group group, Device device, Cursor start) {
    LoaderOptions lo =
        LoaderOptions.of(block, cfg.trainBatchSize(), cfg.seed())
            .withDevice(device)
            .withRank(group.dist().rank(), group.dist().worldSize());
    return new PackedSource(new DataLoader(train, lo, start));
  }

  /** Every rank's micro-batches have the same count of targets. */
  @Override
  public double globalLabelled(long labelled, Group group) {
    return (double) labelled * group.dist().worldSize();
  }

  @Override
  public Optional<EvalMetrics> evaluate(
      LlamaModel model, int block, Device device, boolean bf16, long step) {
    if (validation == null) return Optional.empty();
    return Optional.of(
        Evaluator.evaluate(
            model,
            validation,
            block,
            cfg.evalBatchSize(),
            cfg.maxEvalBatches(),
            device,
            bf16,
            step,
            cfg.lossChunkRows(device)));
  }

  @Override
  public void close() {
    train.close();
    if (validation != null) validation.close();
  }
}
