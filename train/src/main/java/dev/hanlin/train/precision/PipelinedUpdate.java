package dev.hanlin.train.precision;

import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.train.RecomputingBackward;
import dev.hanlin.train.optim.AdamW;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The tensors of offload's pipelined update ({@link OffloadPipeline} orders it): after the
 * backward, each unit's bf16 gradients go to pinned host memory on the side stream, one mark per
 * unit; the background thread runs the CPU AdamW group by group (groups never span two units, see
 * {@link OffloadedMasters#optimizerGroups}), waiting for a unit's gradient copies when it first
 * reads one of them, and queues each group's masters back into the bf16 weights on the side stream;
 * when a unit's last master is queued, the next forward of that unit may go. The arithmetic is the
 * unpipelined update's (the same bf16 gradients cast to float32, the same kernel, clip scale and
 * skip flag), only its time changes.
 */
final class PipelinedUpdate {
  private final OffloadPipeline pipeline;
  private final Map<Tensor, Tensor> paramOf = new IdentityHashMap<>(); // master -> bf16 weight
  private final Map<Tensor, Integer> unitOf = new IdentityHashMap<>(); // master -> unit
  private final List<List<Tensor>> unitMasters = new ArrayList<>(); // in forward order
  private final Map<Tensor, Tensor> hostBuffer = new IdentityHashMap<>(); // master -> pinned grad
  private final Map<Tensor, Tensor> stepGrads = new IdentityHashMap<>(); // this step's, by master
  private final Object[] gradMarks; // per unit: after its gradients' copies
  private final boolean[] gradsWaited;
  private final int[] left; // per unit: masters not yet queued back this step
  private final List<Tensor> held = new ArrayList<>(); // device scalars the side stream reads

  /** Units: -1 (embedding), each layer, the head; index {@code stage + 1}. */
  PipelinedUpdate(Map<String, Tensor> masters, LlamaModel model, OffloadPipeline.Lane lane) {
    int layers = model.config().numHiddenLayers();
    int units = layers + 2;
    for (int u = 0; u < units; u++) unitMasters.add(new ArrayList<>());
    masters.forEach(
        (name, master) -> {
          int u = RecomputingBackward.stageOf(name, layers) + 1;
          paramOf.put(master, model.weights().get(name));
          unitOf.put(master, u);
          unitMasters.get(u).add(master);
        });
    this.pipeline = new OffloadPipeline(lane, units);
    this.gradMarks = new Object[units];
    this.gradsWaited = new boolean[units];
    this.left = new int[units];
  }

  OffloadPipeline pipeline() {
    return pipeline;
  }

  /**
   * After the backward: queues the gradients' copies to the host, then the update on the background
   * thread, {@code gradScale} and {@code foundInf} (device tensors, as the unpipelined step takes
   * them) copied to the host before the gradients.
   */
  void launch(AdamW optimizer, double lr, Tensor gradScale, Tensor foundInf) {
    pipeline.awaitAll(); // the last step's: done by now
    releaseStep();
    Tensor[] host = new Tensor[2];
    pipeline.launch(
        () -> {
          host[0] = toHost(gradScale);
          host[1] = toHost(foundInf);
          for (int u = 0; u < unitMasters.size(); u++) {
            for (Tensor master : unitMasters.get(u)) {
              Tensor g = paramOf.get(master).grad();
              if (g == null) continue;
              Tensor h = hostBuffer.computeIfAbsent(master, m -> pinned(g));
              try (Scope s = Scope.open()) {
                h.raw().copy_(g.raw(), true);
              }
              stepGrads.put(master, h);
            }
            gradMarks[u] = pipeline.lane().mark();
          }
          return pipeline.lane().mark();
        },
        () -> {
          for (int u = 0; u < left.length; u++) {
            left[u] = unitMasters.get(u).size();
            if (left[u] == 0) pipeline.unitQueued(u); // nothing of it updated here
          }
          optimizer.stepScaled(lr, host[0], host[1]);
          for (Tensor t : host) if (t != null) t.release();
        });
  }

  /** A 0-dim device scalar in pinned host memory, kept alive on the device until copied. */
  private Tensor toHost(Tensor t) {
    if (t == null) return null;
    held.add(t.retain());
    Tensor h = pinned(t);
    try (Scope s = Scope.open()) {
      h.raw().copy_(t.raw(), true);
    }
    return h;
  }

  private static Tensor pinned(Tensor like) {
    try (Scope s = Scope.open()) {
      return Torch.emptyPinned(like.dtype(), like.shape()).retain();
    }
  }

  /** On the background thread: a master's gradient as float32, once its unit's copies are in. */
  Tensor gradOf(Tensor master) {
    int u = unitOf.get(master);
    if (!gradsWaited[u]) pipeline.lane().hostWait(gradMarks[u]);
    gradsWaited[u] = true;
    Tensor h = stepGrads.get(master);
    return h == null ? null : h.toFloat();
  }

  /** On the background thread: a group's masters back into the bf16 weights, on the side stream. */
  void afterGroup(List<Tensor> updated) {
    try (Scope s = Scope.open();
        Grad.Guard g = Grad.noGrad()) {
      for (Tensor master : updated) paramOf.get(master).raw().copy_(master.raw(), true);
    }
    for (Tensor master : updated) {
      int u = unitOf.get(master);
      if (--left[u] == 0) pipeline.unitQueued(u);
    }
  }

  /** Everything of the last step done; frees what it held. */
  void drain() {
    pipeline.awaitAll();
    releaseStep();
  }

  private void releaseStep() {
    held.forEach(Tensor::release);
    held.clear();
    stepGrads.clear();
    for (int u = 0; u < gradMarks.length; u++) {
      pipeline.lane().release(gradMarks[u]);
      gradMarks[u] = null;
      gradsWaited[u] = false;
    }
  }
}
