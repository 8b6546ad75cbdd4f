package dev.hanlin.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hanlin.data.Cursor;
import dev.hanlin.data.LabelledBatch;
import dev.hanlin.data.loader.BlockSize;
import dev.hanlin.data.loader.DataLoader;
import dev.hanlin.data.loader.LoaderOptions;
import dev.hanlin.data.prepare.Prepare;
import dev.hanlin.data.prepare.PrepareConfig;
import dev.hanlin.data.shard.TokenDataset;
import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.VocabResize;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.Autocast;
import dev.hanlin.torch.Cuda;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.PendingRead;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Dist;
import dev.hanlin.torch.dist.GradSync;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.torch.dist.Shards;
import dev.hanlin.torch.optim.FusedAdamW;
import dev.hanlin.train.metrics.EvalMetrics;
import dev.hanlin.train.metrics.JsonlListener;
import dev.hanlin.train.metrics.Listeners;
import dev.hanlin.train.metrics.Mfu;
import dev.hanlin.train.metrics.PlotListener;
import dev.hanlin.train.metrics.ProgressListener;
import dev.hanlin.train.metrics.RunInfo;
import dev.hanlin.train.metrics.StepMetrics;
import dev.hanlin.train.metrics.TensorBoardListener;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Causal-LM pretraining: the HF run_clm / Llama2-Chinese recipe on Hanlin's parts. {@link #run}
 * sets up (data, model, optimizer, resume) and {@link #train} is the loop; logging, metrics,
 * evaluation and checkpoints hang off it. Started as several processes (bin/launch, torchrun,
 * SLURM) it trains data-parallel: each rank reads its share of every global batch, gradients are
 * averaged by {@link GradSync}, and only the main rank logs and writes checkpoints.
 */
public final class Trainer {
  private final PretrainConfig cfg;
  private final String resolvedYaml;
  private final PrintStream err;
  private final Path out;
  private final Device device;
  private final boolean bf16;

  private Tokenizer tokenizer;
  private LlamaModel model;
  private FusedAdamW optimizer;
  private TokenDataset train, validation;
  private int block;
  private long maxSteps;
  private LrSchedule schedule;
  private Listeners listeners;
  private TrainerState state;
  private double flopsPerToken, peak; // for MFU
  private Map<String, Tensor> masters; // master_weights: fp32 copies the optimizer updates
  private final Dist dist;
  private Group group = Group.single();
  private GradSync grads;
  private Sft sft; // instruction tuning (--mode sft): its data, and LoRA when configured
  private Shards shards; // zero_stage 1 or 2: each rank updates its share of the parameters

  public Trainer(PretrainConfig cfg, String resolvedYaml, PrintStream err) {
    this.cfg = cfg;
    this.resolvedYaml = resolvedYaml;
    this.err = err;
    this.out = Path.of(cfg.outputDir());
    this.dist = Dist.fromEnv();
    this.device = onLocalRank(Device.parse(cfg.device()), cfg.device(), dist);
    this.bf16 = cfg.bf16() != null ? cfg.bf16() : device.isCuda();
  }

  /** Sets up, trains to the end (or until stopped), exports; returns the final trainer state. */
  public TrainerState run() throws IOException {
    try (Group g = Group.join(dist, device, Duration.ofSeconds(cfg.distTimeoutSeconds()))) {
      group = g;
      return runInGroup();
    }
  }

  /** Each process of a node on its own GPU (its LOCAL_RANK), unless the config names one. */
  private static Device onLocalRank(Device d, String configured, Dist dist) {
    if (!d.isCuda() || !dist.isDistributed() || configured.startsWith("cuda:")) return d;
    return Device.cuda(dist.localRank() % Math.max(1, Torch.cudaDeviceCount()));
  }

  /**
   * Everything that can reject the run (config, tokenizer, data, model folder and shapes, the
   * checkpoint to resume, the schedule) happens before {@link #setUpOutput} touches {@code
   * output_dir}, so a rejected run leaves that folder as it was.
   */
  private TrainerState runInGroup() throws IOException {
    Path resumeFrom = resumePoint();
    if (cfg.modelNameOrPath() != null) requireModelFolder();
    if (cfg.modelNameOrPath() != null
        && out.toAbsolutePath().normalize().equals(modelFolder().toAbsolutePath().normalize()))
      throw new IllegalArgumentException(
          "output_dir is the model folder model_name_or_path ("
              + out
              + "): the run would overwrite the model it starts from; choose another output_dir");
    Torch.manualSeed(cfg.seed());
    if (!device.isCuda())
      Torch.setNumThreads(
          Math.max(1, Runtime.getRuntime().availableProcessors() / dist.localWorldSize()));
    tokenizer = Tokenizer.load(Path.of(cfg.tokenizer()));
    openData();
    Checkpoints.Loaded ck =
        resumeFrom == null ? null : Checkpoints.load(resumeFrom, DType.F32, device);
    if (ck != null) {
      ResumeCheck.check(
          ck.dir(),
          cfg.lora() == null ? expectedModelConfig() : null,
          resolvedYaml,
          cfg,
          tokenizer,
          err);
      FiniteWeights.require(ck.weights(), "checkpoint " + ck.dir());
    }
    model =
        sft != null && cfg.lora() != null
            ? sft.withLora(buildModel(null), ck, device, bf16)
            : buildModel(ck);
    block = BlockSize.resolve(cfg.blockSize(), model.config().maxPositionEmbeddings());
    if (cfg.zeroStage() >= 1 && dist.isDistributed()) shards = Shards.of(trainable(), dist);
    optimizer = buildOptimizer();
    group.broadcast(trainable().values(), 0); // every rank starts from rank 0's weights
    grads =
        zero2()
            ? GradSync.none(group) // gradients go to their owners as backward makes them
            : new GradSync(group, List.copyOf(trainable().values()));
    state = TrainerState.start();
    if (ck != null) {
      // with zero_stage 1 or 2, only this rank's share, from whichever files hold it
      Map<String, Tensor> saved = ck.optimizer(optimizer.state().keySet());
      optimizer.loadState(saved);
      saved.values().forEach(Tensor::release); // the host copies read from the files
      Torch.setCpuRngState(ck.rng().get("cpu"));
      // the GPU's generator too (LoRA dropout draws there), so a resume draws the same masks
      if (device.isCuda() && ck.rng().containsKey("cuda"))
        Torch.setRngState(device, ck.rng().get("cuda"));
      state = ck.state();
    }
    try (LabelledBatch.Source loader = openLoader()) {
      plan(loader); // a bad schedule fails here, before output_dir is touched
      setUpOutput();
      if (ck != null) err.printf("resuming from %s (step %d)%n", resumeFrom, state.step());
      try (StopSignal stop = new StopSignal(300)) {
        return train(loader, stop);
      }
    }
  }

  /**
   * The checkpoint to resume, or null for a fresh run; reads {@code output_dir}, changes nothing.
   */
  private Path resumePoint() throws IOException {
    if (cfg.resumeFromCheckpoint() != null) return Path.of(cfg.resumeFromCheckpoint());
    return cfg.overwriteOutputDir() ? null : Checkpoints.latest(out).orElse(null);
  }

  /**
   * Prepares {@code output_dir} once the run is known to be valid: with {@code
   * overwrite_output_dir} it removes what an earlier run wrote there ({@link RunOutputs}); it drops
   * half-written checkpoints and writes the resolved config.
   */
  private void setUpOutput() throws IOException {
    if (!dist.isMain()) return; // output_dir is shared: the main rank tends it
    Files.createDirectories(out);
    if (cfg.overwriteOutputDir() && cfg.resumeFromCheckpoint() == null) {
      int n = RunOutputs.clear(out);
      if (n > 0)
        err.printf(
            "overwrite_output_dir: removed %d checkpoints and files of the earlier run from %s"
                + " (other files there are left as they are)%n",
            n, out);
    }
    Checkpoints.prune(out, 0); // half-written checkpoints of a killed run
    Checkpoints.write(out.resolve("config.yaml"), resolvedYaml);
  }

  private Path modelFolder() {
    return Path.of(cfg.modelNameOrPath());
  }

  /**
   * Fails with a message that says what to do when the model folder is missing: the SFT example
   * starts from the pretraining demo's output, which exists only once the demo has run.
   */
  private void requireModelFolder() {
    Path f = modelFolder();
    if (Files.isDirectory(f) && Files.exists(f.resolve("config.json"))) return;
    String what =
        Files.isDirectory(f)
            ? "model_name_or_path " + f + " has no config.json (is it a finished run's output?)"
            : "model_name_or_path " + f + " does not exist";
    if (f.normalize().endsWith(Path.of("output", "pretrain-demo")))
      what +=
          "; it is the pretraining demo's model: run the demo to the end first (java -jar"
              + " cli/target/trainer.jar --mode pretrain)";
    throw new IllegalArgumentException(what);
  }

  /** The model config this run builds (before master weights), for checking a checkpoint. */
  private LlamaConfig expectedModelConfig() throws IOException {
    LlamaConfig c;
    if (cfg.modelNameOrPath() != null) {
      requireModelFolder();
      c = LlamaConfig.read(modelFolder().resolve("config.json"));
    } else c = LlamaConfig.fromJson(modelConfigJson());
    return tokenizer.vocabSize() > c.vocabSize() ? c.withVocabSize(tokenizer.vocabSize()) : c;
  }

  /** {@code model_config}'s JSON with {@code config_overrides} applied. */
  private ObjectNode modelConfigJson() throws IOException {
    ObjectNode n =
        (ObjectNode) new ObjectMapper().readTree(Files.readString(Path.of(cfg.modelConfig())));
    cfg.configOverrides().forEach((k, v) -> n.set(k, new ObjectMapper().valueToTree(v)));
    return n;
  }

  private void openData() throws IOException {
    if (cfg.sft() != null) {
      sft = Sft.open(cfg, tokenizer, err);
      return;
    }
    Path data = Path.of(cfg.dataDir());
    if (!cfg.trainFiles().isEmpty() && dist.isMain()) {
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
    train = TokenDataset.open(data, "train", tokenizer.fingerprint());
    // A corrupt validation shard is an error, as a train shard is, not a run without evaluation.
    validation = TokenDataset.open(data, "validation", tokenizer.fingerprint());
    if (validation.tokenCount() == 0) {
      validation.close();
      validation = null;
    }
  }

  private LlamaModel buildModel(Checkpoints.Loaded ck) throws IOException {
    LlamaModel m;
    if (ck != null) {
      LlamaConfig c = LlamaConfig.read(ck.dir().resolve("config.json"));
      m = LlamaModel.fromWeights(c.withDtype(DType.F32), ck.weights());
    } else if (cfg.modelNameOrPath() != null) {
      requireModelFolder();
      m = HfCheckpoint.load(modelFolder(), DType.F32, device);
      FiniteWeights.require(m.weights(), "model folder " + modelFolder());
    } else {
      m = LlamaModel.init(LlamaConfig.fromJson(modelConfigJson()), cfg.seed(), DType.F32, device);
    }
    if (tokenizer.vocabSize() > m.config().vocabSize()) {
      if (cfg.lora() != null)
        cfg.lora()
            .requireGrownModulesSaved(
                m.config().tieWordEmbeddings(), tokenizer.vocabSize(), m.config().vocabSize());
      m = grow(m);
    }
    if (cfg.masterWeights() && bf16 && cfg.lora() == null) {
      // the model computes in bf16; the optimizer updates fp32 masters and copies them back
      masters = m.weights();
      m = LlamaModel.fromWeights(m.config().withDtype(DType.BF16), bf16Copies(masters));
      err.println("master_weights: the model computes in bf16, AdamW updates fp32 master weights");
    }
    for (Tensor w : m.weights().values()) w.requiresGrad(true);
    return m;
  }

  /** Retained bf16 copies of {@code weights} (the same tensors where they are bf16 already). */
  private static Map<String, Tensor> bf16Copies(Map<String, Tensor> weights) {
    Map<String, Tensor> w = new LinkedHashMap<>();
    try (Scope s = Scope.open()) { // the detached views in between
      weights.forEach((k, v) -> w.put(k, v.detach().to(DType.BF16).retain()));
    }
    return w;
  }

  /** With master weights: autocast is not needed, the model's weights are bf16 already. */
  private boolean autocast() {
    return bf16 && masters == null;
  }

  /** The fp32 masters into the bf16 model after an optimizer step. */
  private void copyMastersToModel() {
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.noGrad()) {
      masters.forEach((k, v) -> model.weights().get(k).copy_(v));
    }
  }

  /** The model as checkpoints hold it: the fp32 masters when there are any. */
  private LlamaModel weightsModel() {
    return masters == null
        ? model
        : LlamaModel.fromWeights(model.config().withDtype(DType.F32), masters);
  }

  /**
   * Grows the embeddings for a tokenizer larger than the model. When the model folder has the
   * tokenizer it was trained with and the run's tokenizer extends it, each new token starts as the
   * mean of the tokens its text used to be split into ({@link VocabResize}, as {@code --mode
   * resize-vocab} does); otherwise as the mean token.
   */
  private LlamaModel grow(LlamaModel m) {
    int old = m.config().vocabSize(), size = tokenizer.vocabSize();
    Path folder = cfg.modelNameOrPath() == null ? null : Path.of(cfg.modelNameOrPath());
    LlamaModel grown = null;
    if (Tokenizer.isIn(folder)) {
      try {
        grown = VocabResize.grow(m, Tokenizer.load(folder), tokenizer);
      } catch (dev.hanlin.config.ConfigException e) {
        err.println(e.getMessage());
      }
    }
    err.printf(
        "tokenizer has %d pieces, the model %d: new embeddings start as %s%n",
        size,
        old,
        grown != null
            ? "the mean of the base tokens each new piece encoded to"
            : "the mean of all embeddings");
    return grown != null ? grown : m.resizeTokenEmbeddings(size);
  }

  /** What the optimizer updates: every weight, or with LoRA the adapters and modules to save. */
  private Map<String, Tensor> trainable() {
    return model.lora() != null ? model.lora().weights() : model.weights();
  }

  private FusedAdamW buildOptimizer() {
    Map<String, Tensor> params = masters != null ? masters : trainable();
    List<FusedAdamW.Group> groups = new java.util.ArrayList<>();
    Map<String, Tensor> decay = new LinkedHashMap<>(), noDecay = new LinkedHashMap<>();
    // with master weights, groups of at most 256M elements bound the fp32 gradient copies that
    // one optimizer kernel call needs at a time
    long cap = masters != null ? 1L << 28 : Long.MAX_VALUE, inDecay = 0;
    for (var e : params.entrySet()) {
      String k = e.getKey();
      Tensor v = e.getValue();
      if (shards != null && !shards.owns(k)) continue;
      if (v.dim() < 2) {
        noDecay.put(k, v);
        continue;
      }
      if (inDecay > 0 && inDecay + v.numel() > cap) {
        groups.add(new FusedAdamW.Group("decay." + groups.size(), decay, cfg.weightDecay()));
        decay = new LinkedHashMap<>();
        inDecay = 0;
      }
      decay.put(k, v);
      inDecay += v.numel();
    }
    groups.add(new FusedAdamW.Group("decay", decay, cfg.weightDecay()));
    groups.add(new FusedAdamW.Group("no_decay", noDecay, 0.0));
    groups.removeIf(g -> g.params().isEmpty()); // LoRA adapters are all matrices
    if (masters == null)
      return new FusedAdamW(groups, cfg.adamBeta1(), cfg.adamBeta2(), cfg.adamEpsilon());
    Map<Tensor, Tensor> modelParamOf = new java.util.IdentityHashMap<>();
    masters.forEach((k, v) -> modelParamOf.put(v, model.weights().get(k)));
    return new FusedAdamW(
        groups,
        cfg.adamBeta1(),
        cfg.adamBeta2(),
        cfg.adamEpsilon(),
        master -> {
          Tensor g = modelParamOf.get(master).grad();
          return g == null ? null : g.toFloat();
        });
  }

  private LabelledBatch.Source openLoader() throws IOException {
    LoaderOptions lo =
        LoaderOptions.of(block, cfg.trainBatchSize(), cfg.seed())
            .withDevice(device)
            .withRank(dist.rank(), dist.worldSize());
    return sft != null
        ? sft.loader(cfg, block, dist.rank(), dist.worldSize(), device, state.cursor())
        : new PackedSource(new DataLoader(train, lo, state.cursor()));
  }

  /** The number of steps and the learning-rate schedule. */
  private void plan(LabelledBatch.Source loader) {
    long perEpoch = Math.max(1, loader.stepsPerEpoch() / cfg.gradientAccumulationSteps());
    maxSteps =
        cfg.maxSteps() != null ? cfg.maxSteps() : (long) Math.ceil(cfg.numTrainEpochs() * perEpoch);
    schedule =
        new LrSchedule(
            cfg.learningRate(),
            cfg.minLr(),
            cfg.warmupStepsFor(maxSteps),
            maxSteps,
            LrSchedule.Shape.parse(cfg.lrSchedulerType()));
  }

  private TrainerState train(LabelledBatch.Source loader, StopSignal stop) throws IOException {
    boolean finishedBefore = state.step() >= maxSteps && state.step() > 0;
    flopsPerToken = Mfu.flopsPerToken(model.config(), block);
    peak = device.isCuda() ? Mfu.peakFlopsPerSecond("H100") : Double.NaN;
    listeners =
        !dist.isMain()
            ? Listeners.of()
            : Listeners.of(
                ProgressListener.toStderr(cfg.loggingSteps()),
                new JsonlListener(),
                new TensorBoardListener(),
                new PlotListener());
    listeners.onStart(
        new RunInfo(
            out.getFileName().toString(), maxSteps, state.step(), out, peak, flopsPerToken));
    long stopAt =
        cfg.stopAfterSteps() != null
            ? Math.min(maxSteps, state.step() + cfg.stopAfterSteps())
            : maxSteps;
    while (state.step() < stopAt && !group.any(stop.requested())) { // all ranks stop together
      state = step(loader);
      long n = state.step();
      boolean eval = cfg.evalSteps() > 0 && n % cfg.evalSteps() == 0 && n < maxSteps;
      boolean save = cfg.saveSteps() > 0 && n % cfg.saveSteps() == 0;
      // all values back before a pause; otherwise the host stays one step ahead of the GPU
      readBack(eval || save || n >= stopAt || WAIT_EVERY_STEP ? 0 : 1);
      if (eval) evaluate();
      if (save) checkpoint();
      if (eval || save) forgetLastRead(); // the pause is not the next step's time
    }
    readBack(0);
    forgetLastRead();
    boolean saved = finishedBefore || cfg.saveSteps() > 0 && state.step() % cfg.saveSteps() == 0;
    boolean failing = state.nonfiniteStreak() > 0; // the last steps were all skipped
    if (state.step() >= maxSteps && !failing) {
      // a finished run resumed (perhaps killed during its export) evaluates and exports again;
      // metrics.jsonl keeps one line per evaluated step (JsonlListener)
      if (finishedBefore)
        err.printf(
            "the run had finished (checkpoint at step %d, max_steps %d): evaluating and exporting"
                + " it again%n",
            state.step(), maxSteps);
      evaluate();
      if (!saved) checkpoint();
      export();
    } else if (!saved) {
      checkpoint(); // stopped early (signal, stop_after_steps, skipped steps): keep the progress
    }
    listeners.onEnd();
    if (device.isCuda())
      err.printf(
          "peak CUDA memory: %.2f GiB allocated, %.2f GiB reserved%n",
          Cuda.peakAllocatedBytes(device.index()) / 1073741824.0,
          Cuda.peakReservedBytes(device.index()) / 1073741824.0);
    if (failing)
      throw new IllegalStateException(
          "the run ended with "
              + state.nonfiniteStreak()
              + " skipped steps in a row (non-finite loss or gradient norm) since the last good"
              + " one; the model was not exported. Lower learning_rate or check the data, then"
              + " resume from "
              + Checkpoints.latest(out).map(Path::toString).orElse(out.toString()));
    if (stop.requested() && state.step() < maxSteps && dist.isMain())
      err.printf(
          "stopped at step %d of %d; the checkpoint is %s: run the same command again to resume"
              + "%n",
          state.step(), maxSteps, out.resolve("checkpoint-" + state.step()));
    return state;
  }

  /**
   * One optimizer step over {@code gradient_accumulation_steps} micro-batches, queued on the device
   * without waiting for it: the loss, the gradient norm and the non-finite check stay on the GPU (a
   * non-finite step is skipped by the optimizer kernel itself), and their values come back through
   * {@link #readBack} a step later.
   */
  private TrainerState step(LabelledBatch.Source loader) {
    long t0 = System.nanoTime();
    int accum = cfg.gradientAccumulationSteps();
    Cursor cursor = state.cursor();
    FusedAdamW.zeroGrads(trainable().values()); // all, also those another rank's shard updates
    // The loss is the sum over the window's labelled targets divided by their count over all
    // ranks; as ranks average gradients, each rank divides by the mean count per rank.
    List<LabelledBatch> window = new java.util.ArrayList<>();
    long tokens = 0, labelled = 0;
    for (int micro = 0; micro < accum; micro++) {
      window.add(loader.next());
      tokens += window.getLast().inputs().numel();
      labelled += window.getLast().trained();
    }
    double globalLabelled =
        sft != null ? group.sum(labelled)[0] : (double) labelled * dist.worldSize();
    double perRank = globalLabelled / dist.worldSize();
    long step = state.step();
    double lr = schedule.lr(step);
    try (Scope stepScope = Scope.open()) {
      Tensor lossSum = null; // this rank's summed loss over the window, on the device
      for (int micro = 0; micro < accum; micro++) {
        try (Scope s = Scope.open();
            LabelledBatch b = window.get(micro)) {
          // ranks average gradients once per step, in the last micro-batch's backward
          grads.beforeForward(micro == accum - 1);
          Tensor targets = b.targets().reshape(-1);
          // sum over this micro-batch's tokens / all tokens of the step = the step's mean loss
          Function<Tensor, Tensor> lossSumOf =
              logits ->
                  Torch.crossEntropySum(logits.reshape(-1, logits.size(-1)).toFloat(), targets);
          Tensor l;
          try (Grad.Guard ac = autocast() ? Autocast.enable(device, DType.BF16) : () -> {}) {
            if (cfg.gradientCheckpointing()) {
              l =
                  model
                      .forwardBackwardCheckpointed(
                          b.inputs(),
                          b.packed() ? b.positions() : null,
                          b.packed() ? b.segments() : null,
                          logits -> lossSumOf.apply(logits).div(perRank),
                          zero2() ? gradientsToOwners(micro == accum - 1) : null)
                      .mul(perRank);
            } else {
              Tensor logits =
                  b.packed()
                      ? model.forwardPacked(b.inputs(), b.positions(), b.segments())
                      : model.forward(b.inputs(), null);
              Tensor loss = lossSumOf.apply(logits);
              loss.div(perRank).backward();
              l = loss.detach();
            }
          }
          lossSum = s.keep(lossSum == null ? l : lossSum.add(l));
          cursor = b.cursor();
        } catch (RuntimeException e) {
          window.forEach(LabelledBatch::close);
          throw explainOutOfMemory(grads.explain(e));
        }
      }
      if (group.isDistributed()) group.allReduceSum(lossSum);
      Tensor norm = FusedAdamW.gradNorm(trainable().values()); // of the averaged gradients
      if (zero2()) norm = Shards.globalNorm(group, norm); // each rank has its share's only
      Tensor foundInf = lossSum.isFinite().and(norm.isFinite()).logicalNot().toFloat();
      optimizer.step(lr, FusedAdamW.clipScale(norm, cfg.maxGradNorm()), foundInf);
      if (masters != null) copyMastersToModel();
      if (shards != null) shards.syncParams(group, trainable()); // from each owner to all
      Tensor scalars =
          Torch.stack(List.of(lossSum.toFloat().div(globalLabelled), norm, foundInf), 0);
      long globalTokens = tokens * dist.worldSize();
      inFlight.add(new InFlight(step + 1, lr, globalTokens, t0, PendingRead.of(scalars)));
      return new TrainerState(
          step + 1,
          cursor,
          state.nonfiniteStreak(),
          state.tokensSeen() + globalTokens,
          TrainerState.FORMAT);
    }
  }

  /** A step queued on the device whose loss, gradient norm and skip flag are on their way back. */
  private record InFlight(long step, double lr, long tokens, long startNanos, PendingRead values) {}

  private final java.util.ArrayDeque<InFlight> inFlight = new java.util.ArrayDeque<>();

  /**
   * {@code -Dhanlin.waitEveryStep=true}: read each step's values as soon as it is queued, so the
   * host waits for the GPU every step (what {@code loss.item()} in the loop did); for measuring
   * what the lag gains (bench/).
   */
  private static final boolean WAIT_EVERY_STEP = Boolean.getBoolean("hanlin.waitEveryStep");

  private PendingRead lastRead; // the last step read back, for timing the next on the GPU

  private void forgetLastRead() {
    if (lastRead != null) lastRead.close();
    lastRead = null;
  }

  /**
   * Reports the queued steps whose values are back, all but the newest {@code keep}: keeping the
   * step just queued lets the GPU run it while the host waits only for the one before. Counts the
   * streak of skipped non-finite steps and stops the run when it reaches max_nonfinite_steps.
   */
  private void readBack(int keep) {
    while (inFlight.size() > keep) {
      InFlight f = inFlight.removeFirst();
      float[] v = f.values().values(); // loss, grad norm, 1 when skipped
      // the step's time on the GPU since the previous step ended there; after a pause (eval, a
      // checkpoint) or for the first step, on the host since the step began
      double sec =
          lastRead != null
              ? f.values().secondsSince(lastRead)
              : (System.nanoTime() - f.startNanos()) / 1e9;
      forgetLastRead();
      lastRead = f.values();
      boolean skipped = v[2] != 0;
      int streak = skipped ? state.nonfiniteStreak() + 1 : 0;
      state =
          new TrainerState(
              state.step(), state.cursor(), streak, state.tokensSeen(), TrainerState.FORMAT);
      double tps = f.tokens() / sec;
      listeners.onStep(
          new StepMetrics(
              f.step(),
              maxSteps,
              skipped ? Double.NaN : v[0],
              f.lr(),
              skipped ? Double.NaN : v[1],
              f.tokens(),
              sec,
              tps,
              Mfu.mfu(tps / dist.worldSize(), flopsPerToken, peak),
              skipped));
      if (skipped) {
        err.printf(
            "%nstep %d: loss %s, grad norm %s: skipped (%d in a row)%n",
            f.step(), v[0], v[1], streak);
        if (streak >= cfg.maxNonfiniteSteps())
          throw new IllegalStateException(
              streak
                  + " steps in a row had a non-finite loss or gradient norm (max_nonfinite_steps="
                  + cfg.maxNonfiniteSteps()
                  + "); lower learning_rate or check the data");
      }
    }
  }

  private RuntimeException explainOutOfMemory(RuntimeException e) {
    String m = String.valueOf(e.getMessage());
    if (!m.contains("out of memory")) return e;
    String peak =
        device.isCuda()
            ? String.format(", CUDA peak %.1f GiB", Cuda.peakAllocatedBytes(0) / 1073741824.0)
            : "";
    return new IllegalStateException(
        String.format(
            "out of memory: %,d parameters (fp32 weights, gradients and AdamW state ~%.1f GiB), micro-batch %d x %d tokens%s;"
                + " lower per_device_train_batch_size (raise gradient_accumulation_steps to keep the batch) or block_size",
            model.config().parameterCount(),
            model.config().parameterCount() * 16 / 1073741824.0,
            cfg.trainBatchSize(),
            block,
            peak),
        e);
  }

  private void evaluate() {
    if (sft != null) {
      sft.evaluate(model, cfg, block, device, bf16, state.step()).ifPresent(listeners::onEval);
      return;
    }
    if (validation == null) return;
    EvalMetrics m =
        Evaluator.evaluate(
            model,
            validation,
            block,
            cfg.evalBatchSize(),
            cfg.maxEvalBatches(),
            device,
            bf16,
            state.step());
    listeners.onEval(m);
  }

  /** Every rank: each writes its own share of the optimizer state when it keeps only that. */
  private void checkpoint() throws IOException {
    Map<String, Tensor> rng = new LinkedHashMap<>();
    rng.put("cpu", Torch.cpuRngState().retain());
    if (device.isCuda()) rng.put("cuda", Torch.rngState(device).retain());
    Path dir;
    try {
      dir =
          Checkpoints.save(
              group,
              out,
              model.lora() != null
                  ? Checkpoints.Weights.of(model.lora())
                  : Checkpoints.Weights.of(weightsModel()),
              optimizer.state(),
              shards != null,
              rng,
              state,
              resolvedYaml);
    } finally {
      rng.values().forEach(Tensor::release);
    }
    if (!dist.isMain()) return;
    Checkpoints.prune(out, cfg.saveTotalLimit());
    listeners.onCheckpoint(state.step(), dir);
  }

  /** zero_stage 2 on several ranks: each rank keeps only the gradients of its share. */
  private boolean zero2() {
    return shards != null && cfg.zeroStage() == 2;
  }

  /**
   * ZeRO-2, for the checkpointed backward: as it finishes a stage's gradients (a layer, the head,
   * the embedding), each is summed onto its owner and freed elsewhere, so that no rank ever holds
   * every gradient; {@code last} micro-batch of the step: the owners then average over the ranks.
   */
  private java.util.function.IntConsumer gradientsToOwners(boolean last) {
    if (byStage == null) { // the same every micro-batch: grouped once
      byStage = new java.util.HashMap<>();
      trainable()
          .forEach(
              (k, v) ->
                  byStage
                      .computeIfAbsent(model.backwardStage(k), s -> new LinkedHashMap<>())
                      .put(k, v));
    }
    return stage -> shards.reduceGrads(group, byStage.getOrDefault(stage, Map.of()), last);
  }

  private Map<Integer, Map<String, Tensor>> byStage; // ZeRO-2: trainable weights by backward stage

  /** The final HF folder in {@code output_dir}: weights, config, generation config, tokenizer. */
  private void export() throws IOException {
    if (!dist.isMain()) return;
    FiniteWeights.require(
        model.lora() != null ? model.lora().weights() : weightsModel().weights(),
        "the trained model, not exported to " + out);
    if (model.lora() != null) {
      Sft.exportAdapter(model.lora(), cfg, out);
      Tokenizer.export(Path.of(cfg.tokenizer()), out);
      err.println("exported a PEFT adapter folder to " + out.toAbsolutePath());
      return;
    }
    LlamaModel m = weightsModel();
    if (bf16)
      m = LlamaModel.fromWeights(model.config().withDtype(DType.BF16), bf16Copies(model.weights()));
    HfCheckpoint.save(m, out, cfg.maxShardSize());
    Tokenizer.export(Path.of(cfg.tokenizer()), out);
    err.println("exported an HF model folder to " + out.toAbsolutePath());
  }

  public LlamaModel model() {
    return model;
  }
}
