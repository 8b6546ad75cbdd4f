package dev.hanlin.train.optim;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.optim.FusedAdamW;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * AdamW as {@code torch.optim.AdamW(fused=True)} with parameter groups: one fused kernel call per
 * group ({@link FusedAdamW}). The state (first and second moments, step counts) is plain tensors
 * keyed {@code <kind>.<parameter>}, so it saves as safetensors and resumes bit for bit.
 */
public final class AdamW implements Optimizer {
  /** Parameters (by name) that share a weight decay. */
  public record Group(String name, Map<String, Tensor> params, double weightDecay) {}

  private final List<GroupState> groups = new ArrayList<>();
  private final FusedAdamW.Betas betas;
  private final double maxGradNorm;
  private final Function<Tensor, Tensor> gradOf;
  private final Collection<Tensor> trainable;
  private Consumer<List<Tensor>> afterGroup = g -> {};

  private record GroupState(
      Group group,
      List<Tensor> params,
      List<Tensor> expAvg,
      List<Tensor> expAvgSq,
      List<Tensor> steps) {}

  /**
   * {@code gradOf} gives each parameter's gradient (its own {@code grad()}, or for fp32 master
   * weights the bf16 model's, as float32), or null when there is none; {@code trainable}: the
   * tensors whose gradients {@link #zeroGrad} and {@link #gradNorm} see. {@code maxGradNorm <= 0}:
   * no clipping.
   */
  public AdamW(
      List<Group> groups,
      FusedAdamW.Betas betas,
      double maxGradNorm,
      Function<Tensor, Tensor> gradOf,
      Collection<Tensor> trainable) {
    this.betas = betas;
    this.maxGradNorm = maxGradNorm;
    this.gradOf = gradOf;
    this.trainable = trainable;
    for (Group g : groups) {
      var s =
          new GroupState(
              g, new ArrayList<>(), new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
      for (Tensor p : g.params().values()) {
        s.params.add(p);
        s.expAvg.add(Torch.zeros(DType.F32, p.device(), p.shape()).retain());
        s.expAvgSq.add(Torch.zeros(DType.F32, p.device(), p.shape()).retain());
        s.steps.add(
            Torch.zeros(DType.F32, p.device()).retain()); // 0-dim, on the parameter's device
      }
      this.groups.add(s);
    }
  }

  /**
   * Calls {@code hook} with each group's parameters right after their update (null: nothing), so
   * that work on them (offload's copy back to the device) overlaps the update of the next group.
   */
  public AdamW afterEachGroup(Consumer<List<Tensor>> hook) {
    afterGroup = hook != null ? hook : g -> {};
    return this;
  }

  /** Plain parameters updated from their own gradients, none clipped. */
  public AdamW(List<Group> groups, FusedAdamW.Betas betas) {
    this(groups, betas, 0, Tensor::grad, allParams(groups));
  }

  private static List<Tensor> allParams(List<Group> groups) {
    List<Tensor> all = new ArrayList<>();
    for (Group g : groups) all.addAll(g.params().values());
    return all;
  }

  /**
   * The groups of {@code params} this rank updates ({@code owns}): matrices decay, vectors (norms,
   * biases) do not; the decaying ones are split into groups of at most {@code cap} elements (master
   * weights: that bounds the fp32 gradient copies one kernel call needs at a time).
   */
  public static List<Group> groups(
      Map<String, Tensor> params, Predicate<String> owns, long cap, double weightDecay) {
    List<Group> groups = new ArrayList<>();
    Map<String, Tensor> decay = new LinkedHashMap<>(), noDecay = new LinkedHashMap<>();
    long inDecay = 0;
    for (var e : params.entrySet()) {
      String k = e.getKey();
      Tensor v = e.getValue();
      if (!owns.test(k)) continue;
      if (v.dim() < 2) {
        noDecay.put(k, v);
        continue;
      }
      if (inDecay > 0 && inDecay + v.numel() > cap) {
        groups.add(new Group("decay." + groups.size(), decay, weightDecay));
        decay = new LinkedHashMap<>();
        inDecay = 0;
      }
      decay.put(k, v);
      inDecay += v.numel();
    }
    groups.add(new Group("decay", decay, weightDecay));
    groups.add(new Group("no_decay", noDecay, 0.0));
    groups.removeIf(g -> g.params().isEmpty()); // LoRA adapters are all matrices
    return groups;
  }

  @Override
  public void zeroGrad() {
    try (Scope scope = Scope.open()) {
      for (Tensor p : trainable) if (p.grad() != null) p.grad().raw().zero_();
    }
  }

  @Override
  public Tensor gradNorm() {
    return gradNorm(trainable);
  }

  /**
   * The global L2 norm of the gradients of {@code params} as a 0-dim float32 tensor on their device
   * (NaN or infinite when a gradient is), computed in float32 whatever the gradients' dtype and
   * never read on the host. Parameters without a gradient count as zero.
   */
  public static Tensor gradNorm(Collection<Tensor> params) {
    List<Tensor> norms = new ArrayList<>();
    try (Scope scope = Scope.open()) {
      for (Tensor p : params) {
        Tensor g = p.grad();
        if (g != null) norms.add(scope.keep(Torch.vectorNorm(g, DType.F32)));
      }
    }
    if (norms.isEmpty()) return Torch.zeros(DType.F32, Device.CPU);
    return Torch.vectorNorm(Torch.stack(norms, 0), DType.F32);
  }

  /**
   * What the kernel divides gradients by so that their norm is at most {@code maxNorm}: {@code
   * max(1, (norm + 1e-6) / maxNorm)}, the reciprocal of {@code torch.nn.utils.clip_grad_norm_}'s
   * clip coefficient; null when {@code maxNorm <= 0} (no clipping).
   */
  public static Tensor clipScale(Tensor norm, double maxNorm) {
    return maxNorm > 0 ? norm.add(1e-6).div(maxNorm).clampMin(1.0) : null;
  }

  @Override
  public void step(double lr, Tensor norm, Tensor foundInf) {
    stepScaled(lr, clipScale(norm, maxGradNorm), foundInf);
  }

  /** One update of every parameter, unclipped and never skipped. */
  public void step(double lr) {
    stepScaled(lr, null, null);
  }

  /**
   * One update with every gradient divided by {@code gradScale} (null: none) inside the kernel;
   * when {@code foundInf} (null: none) is 1 nothing changes, not even the step counts.
   */
  public void stepScaled(double lr, Tensor gradScale, Tensor foundInf) {
    for (GroupState s : groups) {
      // one group at a time, so gradients made by gradOf (bf16 to fp32) live for one group only
      try (Scope scope = Scope.open()) {
        List<Tensor> grads = new ArrayList<>(s.params.size());
        for (Tensor p : s.params) {
          Tensor g = gradOf.apply(p);
          if (g == null)
            throw new IllegalStateException(
                "a parameter of group '" + s.group.name() + "' has no gradient");
          grads.add(g);
        }
        FusedAdamW.step(
            s.params,
            grads,
            s.expAvg,
            s.expAvgSq,
            s.steps,
            lr,
            s.group.weightDecay(),
            betas,
            gradScale,
            foundInf);
      }
      afterGroup.accept(s.params);
    }
  }

  @Override
  public Map<String, Tensor> state() {
    Map<String, Tensor> out = new LinkedHashMap<>();
    for (GroupState s : groups) {
      int i = 0;
      for (String name : s.group.params().keySet()) {
        out.put("exp_avg." + name, s.expAvg.get(i));
        out.put("exp_avg_sq." + name, s.expAvgSq.get(i));
        out.put("step." + name, s.steps.get(i));
        i++;
      }
    }
    return out;
  }

  @Override
  public void loadState(Map<String, Tensor> saved) {
    try (Scope scope = Scope.open()) {
      for (var e : state().entrySet()) {
        Tensor src = saved.get(e.getKey());
        if (src == null) throw new IllegalArgumentException("optimizer state lacks " + e.getKey());
        if (!Arrays.equals(src.shape(), e.getValue().shape()))
          throw new IllegalArgumentException(
              "optimizer state "
                  + e.getKey()
                  + " has shape "
                  + Arrays.toString(src.shape())
                  + ", expected "
                  + Arrays.toString(e.getValue().shape()));
        e.getValue().copy_(src);
      }
    }
  }
}
