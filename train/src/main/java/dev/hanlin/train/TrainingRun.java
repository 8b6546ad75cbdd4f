package dev.hanlin.train;

import dev.hanlin.data.LabelledBatch;
import dev.hanlin.data.loader.BlockSize;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.Cuda;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Dist;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.torch.optim.FusedAdamW;
import dev.hanlin.train.explicit.ExplicitSupport;
import dev.hanlin.train.hooks.Checkpointing;
import dev.hanlin.train.hooks.MemoryPlan;
import dev.hanlin.train.hooks.NonFiniteGuard;
import dev.hanlin.train.hooks.OutOfMemory;
import dev.hanlin.train.hooks.Throughput;
import dev.hanlin.train.metrics.JsonlListener;
import dev.hanlin.train.metrics.Listeners;
import dev.hanlin.train.metrics.PlotListener;
import dev.hanlin.train.metrics.ProgressListener;
import dev.hanlin.train.metrics.RunInfo;
import dev.hanlin.train.metrics.TensorBoardListener;
import dev.hanlin.train.optim.AdamW;
import dev.hanlin.train.optim.LrSchedule;
import dev.hanlin.train.optim.Optimizer;
import dev.hanlin.train.parallel.Parallelism;
import dev.hanlin.train.precision.OffloadedMasters;
import dev.hanlin.train.precision.Precision;
import dev.hanlin.train.source.ModelBuilder;
import dev.hanlin.train.source.ShardedModel;
import dev.hanlin.train.task.Task;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * One training run, the HF run_clm / Llama2-Chinese recipe on Hanlin's parts: joins the process
 * group, builds the components once from the config ({@link Precision}, {@link Parallelism}, the
 * optimizer, the model from its source, the {@link Task}), resumes, hands them to the {@link
 * Trainer} loop, and ends the run (final evaluation, checkpoint, export). Started as several
 * processes (bin/launch, torchrun, SLURM) it trains data-parallel: each rank reads its share of
 * every global batch, and only the main rank logs and writes the run's files.
 */
public final class TrainingRun {
  private final PretrainConfig cfg;
  private final String resolvedYaml;
  private final PrintStream err;
  private final Path out;
  private final Dist dist;
  private final Device device;
  private final Precision precision;
  private MemoryPlan
      memoryPlan; // full training: what one GPU should hold, printed at start and end

  public TrainingRun(PretrainConfig cfg, String resolvedYaml, PrintStream err) {
    this.cfg = cfg;
    this.resolvedYaml = resolvedYaml;
    this.err = err;
    this.out = Path.of(cfg.outputDir());
    this.dist = Dist.fromEnv();
    this.device = onLocalRank(Device.parse(cfg.device()), cfg.device(), dist);
    this.precision =
        cfg.offloadsOptimizer()
            ? new OffloadedMasters(cfg.offloadPipeline(), device)
            : Precision.of(cfg.bf16(), cfg.masterWeights(), cfg.lora() != null, device);
  }

  /** Sets up, trains to the end (or until stopped), exports; returns the final trainer state. */
  public TrainerState run() throws IOException {
    try (Group g = Group.join(dist, device, Duration.ofSeconds(cfg.distTimeoutSeconds()))) {
      return runInGroup(g);
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
  private TrainerState runInGroup(Group group) throws IOException {
    Path resumeFrom = Checkpointing.resumePoint(cfg, out);
    ModelBuilder.checkFolder(cfg, out);
    Torch.manualSeed(cfg.seed());
    if (!device.isCuda())
      Torch.setNumThreads(
          Math.max(1, Runtime.getRuntime().availableProcessors() / dist.localWorldSize()));
    Tokenizer tokenizer = Tokenizer.load(Path.of(cfg.tokenizer()));
    try (Task task = Task.open(cfg, tokenizer, group, err)) {
      // ZeRO-3 takes a checkpoint's weights from host memory, one unit at a time to the device;
      // offload keeps them there as its masters
      boolean zero3Streams = cfg.zeroStage() == 3 && cfg.lora() == null;
      Checkpoints.Loaded ck =
          resumeFrom == null
              ? null
              : Checkpoints.load(
                  resumeFrom, DType.F32, zero3Streams ? Device.CPU : precision.buildOn(device));
      if (ck != null) {
        ResumeCheck.check(
            ck.dir(),
            cfg.lora() == null ? ModelBuilder.expectedConfig(cfg, tokenizer) : null,
            resolvedYaml,
            cfg,
            tokenizer,
            err);
        FiniteWeights.require(ck.weights(), "checkpoint " + ck.dir());
      }
      ShardedModel.Built zero3 =
          zero3Streams ? ShardedModel.prepare(cfg, ck, tokenizer, precision, device, err) : null;
      LlamaModel model =
          zero3 != null
              ? zero3.model()
              : ModelBuilder.build(cfg, ck, tokenizer, precision, device, err);
      int block = BlockSize.resolve(cfg.blockSize(), model.config().maxPositionEmbeddings());
      Map<String, Tensor> trainable =
          model.lora() != null ? model.lora().weights() : model.weights();
      int layers = model.config().numHiddenLayers();
      Backward backward = backward(model);
      Parallelism parallelism =
          zero3 != null
              ? sharded(group, zero3, err)
              : cfg.zeroStage() == 3
                  ? zero3(group, model, trainable)
                  : Parallelism.of(
                      cfg.zeroStage(),
                      group,
                      trainable,
                      n -> RecomputingBackward.stageOf(n, layers),
                      cfg.overlapComm() ? cfg.reduceBucketSize() : 0,
                      backward.isExplicit());
      precision.shard(parallelism::owns, group);
      if (model.lora() == null) {
        memoryPlan = MemoryPlan.of(model.config(), memorySetup(block));
        if (dist.isMain()) err.print(memoryPlan.render());
      }
      AdamW optimizer =
          parallelism.optimizer(
              precision,
              model,
              trainable,
              cfg.weightDecay(),
              new FusedAdamW.Betas(cfg.adamBeta1(), cfg.adamBeta2(), cfg.adamEpsilon()),
              cfg.maxGradNorm());
      optimizer.afterEachGroup(precision.afterGroupStep(model));
      Optimizer stepper = precision.optimizer(optimizer, cfg.maxGradNorm());
      parallelism.start(trainable);
      var checkpointing = new Checkpointing(group, out, resolvedYaml, cfg.saveTotalLimit(), device);
      TrainerState state =
          ck == null ? TrainerState.start() : checkpointing.restore(ck, stepper, parallelism);
      try (LabelledBatch.Source loader = task.loader(block, group, device, state.cursor())) {
        long perEpoch = Math.max(1, loader.stepsPerEpoch() / cfg.gradientAccumulationSteps());
        long maxSteps =
            cfg.maxSteps() != null
                ? cfg.maxSteps()
                : (long) Math.ceil(cfg.numTrainEpochs() * perEpoch);
        var schedule =
            new LrSchedule(
                cfg.learningRate(),
                cfg.minLr(),
                cfg.warmupStepsFor(maxSteps), // a bad schedule fails here, before output_dir
                maxSteps,
                LrSchedule.Shape.parse(cfg.lrSchedulerType()));
        setUpOutput();
        if (ck != null) err.printf("resuming from %s (step %d)%n", resumeFrom, state.step());
        var parts =
            new Trainer.Parts(
                model,
                precision,
                parallelism,
                stepper,
                schedule,
                task,
                backward,
                device,
                cfg.gradientAccumulationSteps(),
                new OutOfMemory(
                    model.config().parameterCount(), cfg.trainBatchSize(), block, device),
                cfg.lossChunkRows(device));
        try (StopSignal stop = new StopSignal(300)) {
          return train(parts, state, loader, maxSteps, block, checkpointing, stop);
        }
      }
    }
  }

  /** ZeRO-3 over the placeholder model {@code zero3}, its values streamed in unit by unit. */
  private static Parallelism sharded(Group group, ShardedModel.Built zero3, PrintStream err) {
    try (var weights = zero3.weights()) {
      return Parallelism.sharded(group, zero3.model(), weights, err);
    }
  }

  /**
   * ZeRO-3: of the whole model (its fp32 values, the weights or the precision's masters, handed
   * over), or of a LoRA run's frozen base (adapters replicated).
   */
  private Parallelism zero3(Group group, LlamaModel model, Map<String, Tensor> trainable) {
    if (model.lora() != null) return Parallelism.shardedLora(group, model, err);
    return Parallelism.sharded(group, model, precision.handOverFp32(trainable), err);
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

  /** The loop, then the run's end: final evaluation, checkpoint and export, or why not. */
  private TrainerState train(
      Trainer.Parts parts,
      TrainerState state,
      LabelledBatch.Source loader,
      long maxSteps,
      int block,
      Checkpointing checkpointing,
      StopSignal stop)
      throws IOException {
    Trainer trainer = new Trainer(parts, state);
    boolean finishedBefore = state.step() >= maxSteps && state.step() > 0;
    var throughput = new Throughput(parts.model().config(), block, device, dist.worldSize());
    Listeners listeners =
        !dist.isMain()
            ? Listeners.of()
            : Listeners.of(
                ProgressListener.toStderr(cfg.loggingSteps()),
                new JsonlListener(),
                new TensorBoardListener(),
                new PlotListener());
    listeners.onStart(
        new RunInfo(
            out.getFileName().toString(),
            maxSteps,
            state.step(),
            out,
            throughput.peak(),
            throughput.flopsPerToken()));
    long stopAt =
        cfg.stopAfterSteps() != null
            ? Math.min(maxSteps, state.step() + cfg.stopAfterSteps())
            : maxSteps;
    var hooks =
        new Trainer.Hooks(
            listeners,
            throughput,
            new NonFiniteGuard(cfg.maxNonfiniteSteps(), err),
            checkpointing,
            block);
    var plan = new Trainer.Plan(maxSteps, stopAt, cfg.evalSteps(), cfg.saveSteps());
    state = trainer.train(loader, plan, hooks, stop::requested);
    // save_strategy: no writes no checkpoint, at the end neither (only the export)
    boolean saved =
        finishedBefore
            || !cfg.savesCheckpoints()
            || cfg.saveSteps() > 0 && state.step() % cfg.saveSteps() == 0;
    boolean failing = state.nonfiniteStreak() > 0; // the last steps were all skipped
    if (state.step() >= maxSteps && !failing) {
      // a finished run resumed (perhaps killed during its export) evaluates and exports again;
      // metrics.jsonl keeps one line per evaluated step (JsonlListener)
      if (finishedBefore)
        err.printf(
            "the run had finished (checkpoint at step %d, max_steps %d): evaluating and exporting"
                + " it again%n",
            state.step(), maxSteps);
      trainer.evaluate(hooks);
      if (!saved) trainer.checkpoint(hooks);
      parts.parallelism().export(parts.model(), precision, exporter(parts.task()));
    } else if (!saved) {
      trainer.checkpoint(hooks); // stopped early (signal, stop_after_steps, skipped steps)
    }
    listeners.onEnd();
    if (device.isCuda())
      err.printf(
          "peak CUDA memory: %.2f GiB allocated, %.2f GiB reserved%n",
          Cuda.peakAllocatedBytes(device.index()) / 1073741824.0,
          Cuda.peakReservedBytes(device.index()) / 1073741824.0);
    if (memoryPlan != null && dist.isMain()) err.println(memoryPlan.measured(device));
    if (failing)
      throw new IllegalStateException(
          "the run ended with "
              + state.nonfiniteStreak()
              + " skipped steps in a row (non-finite loss or gradient norm) since the last good"
              + " one; the model was not exported. Lower learning_rate or check the data, then"
              + " resume from "
              + Checkpoints.latest(out).map(Path::toString).orElse(out.toString()));
    if (stop.requested() && state.step() < maxSteps && dist.isMain() && !cfg.savesCheckpoints())
      err.printf(
          "stopped at step %d of %d; save_strategy: no, so no checkpoint was written and the run"
              + " cannot resume%n",
          state.step(), maxSteps);
    else if (stop.requested() && state.step() < maxSteps && dist.isMain())
      err.printf(
          "stopped at step %d of %d; the checkpoint is %s: run the same command again to resume"
              + "%n",
          state.step(), maxSteps, out.resolve("checkpoint-" + state.step()));
    return state;
  }

  /** The task's export of the final folder, and its parts for a model written piece by piece. */
  private Parallelism.ModelWriter exporter(Task task) {
    return new Parallelism.ModelWriter() {
      @Override
      public void write(LlamaModel model, Precision precision) throws IOException {
        task.export(model, precision, cfg, out, err);
      }

      @Override
      public Path folder() {
        return out;
      }

      @Override
      public long maxShardBytes() {
        return cfg.maxShardSize();
      }

      @Override
      public void finish() throws IOException {
        Tokenizer.export(Path.of(cfg.tokenizer()), out);
        err.println("exported an HF model folder to " + out.toAbsolutePath());
      }
    };
  }

  /** What the memory plan of this run depends on besides the model's shape. */
  private MemoryPlan.Setup memorySetup(int block) {
    return new MemoryPlan.Setup(
        MemoryPlan.Kind.of(precision),
        cfg.zeroStage(),
        dist.worldSize(),
        cfg.trainBatchSize(),
        block,
        cfg.gradientCheckpointing(),
        cfg.overlapComm() ? cfg.reduceBucketSize() : 0);
  }

  /**
   * The recomputing backward with {@code gradient_checkpointing}, and always on a quantized base
   * ({@code lora.load_in_bits}), as PEFT's {@code prepare_model_for_kbit_training} turns it on:
   * autograd keeps the dequantized weight each projection's input gradient needs until backward, so
   * without recomputation every layer's copy would be alive at once, a bf16 model again. With
   * {@code explicit_backward} (on CUDA by default) the explicit backward instead, where it supports
   * the run ({@link ExplicitSupport}, the one place that decides; it says once which runs).
   */
  private Backward backward(LlamaModel model) {
    boolean quantized = cfg.lora() != null && cfg.lora().needsGradientCheckpointing();
    if (quantized && !cfg.gradientCheckpointing())
      err.println(
          "lora.load_in_bits: gradient checkpointing is on (each block is recomputed in backward,"
              + " so only one block's dequantized weights are alive at a time)");
    boolean explicit =
        ExplicitSupport.use(
            cfg.explicitBackwardOn(device.isCuda()), model, dist.isMain() ? err : null);
    return Backward.of(cfg.gradientCheckpointing() || quantized, explicit);
  }
}
