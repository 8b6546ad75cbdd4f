package dev.hanlin.train.hooks;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.Checkpoints;
import dev.hanlin.train.PretrainConfig;
import dev.hanlin.train.TrainerState;
import dev.hanlin.train.metrics.Listeners;
import dev.hanlin.train.optim.Optimizer;
import dev.hanlin.train.parallel.Parallelism;
import dev.hanlin.train.precision.Precision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Where a run resumes from, and a checkpoint's parts: the model's (its trainable weights as the
 * precision saves them, or the LoRA adapter), the optimizer's (whole, or this rank's share), the
 * random state, and the trainer state (step, data cursor, skip streak, tokens; the learning-rate
 * schedule is a function of the step). {@link Checkpoints} writes and reads them in the format on
 * disk.
 */
public final class Checkpointing {
  private final Group group;
  private final Path out;
  private final String resolvedYaml;
  private final int saveTotalLimit;
  private final Device device;

  public Checkpointing(Group group, Path out, String resolvedYaml, int saveTotalLimit, Device d) {
    this.group = group;
    this.out = out;
    this.resolvedYaml = resolvedYaml;
    this.saveTotalLimit = saveTotalLimit;
    this.device = d;
  }

  /**
   * The checkpoint to resume, or null for a fresh run: {@code resume_from_checkpoint}, else the
   * latest complete one in {@code output_dir} unless {@code overwrite_output_dir}. Reads {@code
   * output_dir}, changes nothing.
   */
  public static Path resumePoint(PretrainConfig cfg, Path out) throws IOException {
    if (cfg.resumeFromCheckpoint() != null) {
      Path from = Path.of(cfg.resumeFromCheckpoint());
      if (!Files.exists(from.resolve(Checkpoints.STATE)) && withoutCheckpoints(from))
        throw new IllegalArgumentException(
            "resume_from_checkpoint: "
                + from
                + " is the output_dir of a run with save_strategy: no: it holds the final model"
                + " but no checkpoint, so there is nothing to resume. To train on from its"
                + " weights, give it as model_name_or_path");
      return from;
    }
    if (cfg.overwriteOutputDir()) return null;
    Path latest = Checkpoints.latest(out).orElse(null);
    if (latest == null && withoutCheckpoints(out) && exported(out))
      throw new IllegalArgumentException(
          "output_dir "
              + out
              + " holds the final model of a run with save_strategy: no and no checkpoint, so"
              + " there is nothing to resume: set overwrite_output_dir: true to train again from"
              + " the start (it removes that model), or give the folder as model_name_or_path to"
              + " train on from its weights");
    return latest;
  }

  /** Whether {@code dir} is the output_dir of a run that wrote no checkpoints (its config says). */
  static boolean withoutCheckpoints(Path dir) throws IOException {
    Path yaml = dir.resolve("config.yaml");
    return Files.isRegularFile(yaml) && NO_SAVE.matcher(Files.readString(yaml)).find();
  }

  private static final Pattern NO_SAVE =
      Pattern.compile("^save_strategy: *[\"']?no[\"']? *$", Pattern.MULTILINE);

  private static boolean exported(Path dir) {
    return Files.exists(dir.resolve("model.safetensors"))
        || Files.exists(dir.resolve("model.safetensors.index.json"))
        || Files.exists(dir.resolve("adapter_model.safetensors")); // LoRA
  }

  /**
   * Loads the optimizer's part (with sharded state, only this rank's share, from whichever files
   * hold it) and the random state of {@code ck}; returns its trainer state. The model's part was
   * read when the model was built.
   */
  public TrainerState restore(Checkpoints.Loaded ck, Optimizer optimizer, Parallelism parallelism)
      throws IOException {
    parallelism.restoreOptimizer(ck, optimizer);
    RngState.restore(ck.rng(), device);
    return ck.state();
  }

  /**
   * Every rank: writes {@code checkpoint-<step>} (each rank its own share of the optimizer state
   * when it keeps only that), then the main rank prunes old ones and tells the listeners.
   */
  public void save(
      LlamaModel model,
      Precision precision,
      Optimizer optimizer,
      Parallelism parallelism,
      TrainerState state,
      Listeners listeners)
      throws IOException {
    Map<String, Tensor> rng = RngState.save(device);
    Path dir;
    try {
      Map<String, Checkpoints.Part> parts =
          new LinkedHashMap<>(parallelism.checkpointParts(model, precision, optimizer));
      parts.put("rng", Checkpoints.Part.tensors(RngState.FILE, rng));
      parts.put("config", Checkpoints.Part.text("config.yaml", resolvedYaml));
      dir = Checkpoints.save(group, out, parts, state);
    } finally {
      rng.values().forEach(Tensor::release);
    }
    if (!group.dist().isMain()) return;
    Checkpoints.prune(out, saveTotalLimit);
    listeners.onCheckpoint(state.step(), dir);
  }
}
