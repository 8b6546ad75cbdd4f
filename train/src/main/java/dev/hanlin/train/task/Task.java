package dev.hanlin.train.task;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.LabelledBatch;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.FiniteWeights;
import dev.hanlin.train.PretrainConfig;
import dev.hanlin.train.metrics.EvalMetrics;
import dev.hanlin.train.precision.Precision;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Optional;

/**
 * What is trained on and how it is judged: {@link Pretraining} (packed token blocks of prepared
 * shards, every target trained) and {@link SftTask} (instruction samples, only the responses
 * trained). A task owns its data (opened before the model is built, so that bad data rejects the
 * run early), its batch source, the loss normalisation over ranks, evaluation and the export.
 */
public interface Task extends AutoCloseable {
  /** Opens (and for pretraining prepares) the data of {@code cfg}: {@code --mode sft} or not. */
  static Task open(PretrainConfig cfg, Tokenizer tokenizer, Group group, PrintStream err)
      throws IOException {
    return cfg.sft() != null
        ? SftTask.open(cfg, tokenizer, err)
        : Pretraining.open(cfg, tokenizer, group, err);
  }

  /** This rank's micro-batches of {@code block} tokens, from {@code start}. */
  LabelledBatch.Source loader(int block, Group group, Device device, Cursor start)
      throws IOException;

  /**
   * The count the step's summed loss is divided by: the labelled targets of the step over all
   * ranks, from this rank's {@code labelled}. Every rank calls it.
   */
  double globalLabelled(long labelled, Group group);

  /** The validation metrics at {@code step}, or empty when there is no validation data. */
  Optional<EvalMetrics> evaluate(
      LlamaModel model, int block, Device device, boolean bf16, long step);

  /**
   * The final folder in {@code out}: an HF model (in the precision's export dtype) or, for LoRA, a
   * PEFT adapter, with the tokenizer.
   */
  default void export(
      LlamaModel model, Precision precision, PretrainConfig cfg, Path out, PrintStream err)
      throws IOException {
    FiniteWeights.require(
        model.lora() != null ? model.lora().weights() : precision.saved(model).weights(),
        "the trained model, not exported to " + out);
    if (model.lora() != null) {
      SftTask.exportAdapter(model.lora(), cfg, out);
      Tokenizer.export(Path.of(cfg.tokenizer()), out);
      err.println("exported a PEFT adapter folder to " + out.toAbsolutePath());
      return;
    }
    dev.hanlin.model.HfCheckpoint.save(precision.exported(model), out, cfg.maxShardSize());
    Tokenizer.export(Path.of(cfg.tokenizer()), out);
    err.println("exported an HF model folder to " + out.toAbsolutePath());
  }

  @Override
  default void close() {}
}
