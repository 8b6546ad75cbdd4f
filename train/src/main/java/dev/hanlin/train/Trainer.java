package dev.hanlin.train;

import dev.hanlin.data.Cursor;
import dev.hanlin.data.LabelledBatch;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.PendingRead;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.train.hooks.Checkpointing;
import dev.hanlin.train.hooks.NonFiniteGuard;
import dev.hanlin.train.hooks.OutOfMemory;
import dev.hanlin.train.hooks.Throughput;
import dev.hanlin.train.metrics.Listeners;
import dev.hanlin.train.metrics.StepMetrics;
import dev.hanlin.train.optim.LrSchedule;
import dev.hanlin.train.optim.Optimizer;
import dev.hanlin.train.parallel.Parallelism;
import dev.hanlin.train.precision.Precision;
import dev.hanlin.train.task.Task;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The training loop over the components {@link TrainingRun} builds from the config: {@link #step}
 * is one optimizer step, the same code whatever the precision, parallelism, task or adapters;
 * {@link #train} repeats it and calls the hooks (evaluation, checkpoints, the non-finite guard,
 * throughput) at their steps.
 */
public final class Trainer {
  /** What a step drives, built once. */
  public record Parts(
      LlamaModel model,
      Precision precision,
      Parallelism parallelism,
      Optimizer optimizer,
      LrSchedule schedule,
      Task task,
      Backward backward,
      Device device,
      int accumulation,
      OutOfMemory oom,
      long lossChunkRows) {

    /** What the optimizer updates: every weight, or with LoRA the adapters and modules to save. */
    Map<String, Tensor> trainable() {
      return model.lora() != null ? model.lora().weights() : model.weights();
    }
  }

  /** What hangs off the loop between steps. */
  public record Hooks(
      Listeners listeners,
      Throughput throughput,
      NonFiniteGuard guard,
      Checkpointing checkpointing,
      int block) {}

  /** When the loop evaluates, saves and stops. */
  public record Plan(long maxSteps, long stopAt, long evalSteps, long saveSteps) {}

  /** A step queued on the device whose loss, gradient norm and skip flag are on their way back. */
  public record Queued(long step, double lr, long tokens, long startNanos, PendingRead values) {}

  /**
   * {@code -Dhanlin.waitEveryStep=true}: read each step's values as soon as it is queued, so the
   * host waits for the GPU every step (what {@code loss.item()} in the loop did); for measuring
   * what the lag gains (bench/).
   */
  private static final boolean WAIT_EVERY_STEP = Boolean.getBoolean("hanlin.waitEveryStep");

  private final Parts p;
  private final Map<String, Tensor> trainable;
  private final Group group;
  private final ArrayDeque<Queued> inFlight = new ArrayDeque<>();
  private TrainerState state;

  public Trainer(Parts parts, TrainerState start) {
    this.p = parts;
    this.trainable = parts.trainable();
    this.group = parts.parallelism().group();
    this.state = start;
  }

  public TrainerState state() {
    return state;
  }

  public Parts parts() {
    return p;
  }

  /**
   * Steps until {@code plan}'s stop or {@code stop} (all ranks stop together), reading each step's
   * values a step late so that the host stays one step ahead of the GPU; evaluates and checkpoints
   * on their steps. Returns the state after the last step.
   */
  public TrainerState train(LabelledBatch.Source loader, Plan plan, Hooks h, Supplier<Boolean> stop)
      throws IOException {
    while (state.step() < plan.stopAt() && !group.any(stop.get())) {
      step(loader);
      long n = state.step();
      boolean eval = plan.evalSteps() > 0 && n % plan.evalSteps() == 0 && n < plan.maxSteps();
      boolean save = plan.saveSteps() > 0 && n % plan.saveSteps() == 0;
      // all values back before a pause; otherwise the host stays one step ahead of the GPU
      readBack(eval || save || n >= plan.stopAt() || WAIT_EVERY_STEP ? 0 : 1, plan, h);
      if (eval) evaluate(h);
      if (save) checkpoint(h);
      if (eval || save) h.throughput().forget(); // the pause is not the next step's time
    }
    readBack(0, plan, h);
    h.throughput().forget();
    p.precision().awaitAll(); // what follows (export, a caller) uses the whole model
    return state;
  }

  void evaluate(Hooks h) {
    p.precision().awaitAll();
    try (Grad.Guard whole = p.parallelism().wholeModel()) { // ZeRO-3: gathered for it
      p.task()
          .evaluate(p.model(), h.block(), p.device(), p.precision().bf16(), state.step())
          .ifPresent(h.listeners()::onEval);
    }
  }

  void checkpoint(Hooks h) throws IOException {
    p.precision().awaitAll();
    h.checkpointing()
        .save(p.model(), p.precision(), p.optimizer(), p.parallelism(), state, h.listeners());
  }

  /**
   * One optimizer step over {@code accumulation} micro-batches, queued on the device without
   * waiting for it: the loss, the gradient norm and the non-finite check stay on the GPU (a
   * non-finite step is skipped by the optimizer kernel itself), and their values come back in the
   * returned {@link Queued} (which the loop reads a step later).
   */
  public Queued step(LabelledBatch.Source loader) {
    long t0 = System.nanoTime();
    int accum = p.accumulation();
    Cursor cursor = state.cursor();
    p.optimizer().zeroGrad(); // all, also those another rank's shard updates
    // offload's pipelined update may still be running: the passes that walk the stages wait for
    // each unit's new weights before its forward, the plain autograd pass for all of them now
    if (!p.backward().walksStages()) p.precision().awaitAll();
    // The loss is the sum over the window's labelled targets divided by their count over all
    // ranks; as ranks average gradients, each rank divides by the mean count per rank.
    List<LabelledBatch> window = new ArrayList<>();
    long tokens = 0, labelled = 0;
    for (int micro = 0; micro < accum; micro++) {
      window.add(loader.next());
      tokens += window.getLast().inputs().numel();
      labelled += window.getLast().trained();
    }
    int world = group.dist().worldSize();
    double globalLabelled = p.task().globalLabelled(labelled, group);
    double perRank = globalLabelled / world;
    long step = state.step();
    double lr = p.schedule().lr(step);
    try (Scope stepScope = Scope.open()) {
      Tensor lossSum = null; // this rank's summed loss over the window, on the device
      for (int micro = 0; micro < accum; micro++) {
        boolean last = micro == accum - 1;
        try (Scope s = Scope.open();
            LabelledBatch b = window.get(micro)) {
          // ranks average gradients once per step, in the last micro-batch's backward
          p.parallelism().beforeMicroBatch(last);
          // sum over this micro-batch's tokens / all tokens of the step = the step's mean loss
          LossHead head = new LossHead(b.targets().reshape(-1), p.lossChunkRows());
          Tensor l;
          try (Grad.Guard ac = p.precision().enter(p.device())) {
            l =
                p.backward()
                    .run(
                        p.model(),
                        b,
                        head,
                        perRank,
                        p.precision()
                            .gateUnits(p.parallelism().afterBackwardStage(trainable, last)));
          }
          lossSum = s.keep(lossSum == null ? l : lossSum.add(l));
          cursor = b.cursor();
        } catch (RuntimeException e) {
          window.forEach(LabelledBatch::close);
          throw p.oom().explain(p.parallelism().explain(e));
        }
      }
      if (group.isDistributed()) group.allReduceSum(lossSum);
      // of the averaged gradients; with ZeRO-2 each rank has its share's only
      Tensor norm = p.parallelism().globalNorm(p.optimizer().gradNorm());
      Tensor foundInf = lossSum.isFinite().and(norm.isFinite()).logicalNot().toFloat();
      p.optimizer().step(lr, norm, foundInf);
      p.precision().afterStep(p.model());
      p.parallelism().afterOptimizerStep(trainable); // from each owner to all
      Tensor scalars =
          Torch.stack(List.of(lossSum.toFloat().div(globalLabelled), norm, foundInf), 0);
      long globalTokens = tokens * world;
      Queued q = new Queued(step + 1, lr, globalTokens, t0, PendingRead.of(scalars));
      inFlight.add(q);
      state =
          new TrainerState(
              step + 1,
              cursor,
              state.nonfiniteStreak(),
              state.tokensSeen() + globalTokens,
              TrainerState.FORMAT);
      return q;
    }
  }

  /**
   * Reports the queued steps whose values are back, all but the newest {@code keep}: keeping the
   * step just queued lets the GPU run it while the host waits only for the one before.
   */
  private void readBack(int keep, Plan plan, Hooks h) {
    while (inFlight.size() > keep) {
      Queued f = inFlight.removeFirst();
      float[] v = f.values().values(); // loss, grad norm, 1 when skipped
      double sec = h.throughput().seconds(f.values(), f.startNanos());
      boolean skipped = v[2] != 0;
      int streak = skipped ? state.nonfiniteStreak() + 1 : 0;
      state =
          new TrainerState(
              state.step(), state.cursor(), streak, state.tokensSeen(), TrainerState.FORMAT);
      double tps = f.tokens() / sec;
      h.listeners()
          .onStep(
              new StepMetrics(
                  f.step(),
                  plan.maxSteps(),
                  skipped ? Double.NaN : v[0],
                  f.lr(),
                  skipped ? Double.NaN : v[1],
                  f.tokens(),
                  sec,
                  tps,
                  h.throughput().mfu(tps),
                  skipped));
      h.guard().check(f.step(), v[0], v[1], streak);
    }
  }
}
