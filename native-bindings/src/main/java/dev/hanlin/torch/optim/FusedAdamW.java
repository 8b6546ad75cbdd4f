package dev.hanlin.torch.optim;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.bytedeco.pytorch.Dispatcher;
import org.bytedeco.pytorch.GenericList;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueVector;
import org.bytedeco.pytorch.OperatorHandle;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.TensorType;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.Type;
import org.bytedeco.pytorch.global.torch;

/**
 * AdamW as {@code torch.optim.AdamW(fused=True)}: one {@code aten::_fused_adamw_} kernel per
 * parameter group through the dispatcher (javacpp-pytorch.md §5), on CPU and CUDA alike. The state
 * (first and second moments, step counts) is plain tensors keyed by parameter name, so it saves as
 * safetensors and resumes bit for bit.
 */
public final class FusedAdamW {
  /** Parameters (by name) that share a weight decay. */
  public record Group(String name, Map<String, Tensor> params, double weightDecay) {}

  private static final Type.TypePtr TENSOR_T = new Type.TypePtr(TensorType.get());
  private final OperatorHandle adamw =
      Dispatcher.singleton().findSchemaOrThrow("aten::_fused_adamw_", "");
  private final OperatorHandle addScalar =
      Dispatcher.singleton().findSchemaOrThrow("aten::_foreach_add_", "Scalar");
  private final OperatorHandle addTensor =
      Dispatcher.singleton().findSchemaOrThrow("aten::_foreach_add_", "Tensor");
  private final OperatorHandle zero =
      Dispatcher.singleton().findSchemaOrThrow("aten::_foreach_zero_", "");
  private final double beta1, beta2, eps;
  private final List<GroupState> groups = new ArrayList<>();
  private final Function<Tensor, Tensor> gradOf;

  private static final class GroupState {
    final Group group;
    final List<Tensor> params = new ArrayList<>();
    final List<Tensor> expAvg = new ArrayList<>();
    final List<Tensor> expAvgSq = new ArrayList<>();
    final List<Tensor> steps = new ArrayList<>();
    IValue paramList, avgList, sqList, stepList, emptyList;

    GroupState(Group g) {
      group = g;
    }
  }

  public FusedAdamW(List<Group> groups, double beta1, double beta2, double eps) {
    this(groups, beta1, beta2, eps, Tensor::grad);
  }

  /**
   * An optimizer whose parameters take their gradients from {@code gradOf} instead of their own
   * {@code grad()}: fp32 master weights updated from the gradients of a bf16 model. {@code gradOf}
   * returns a tensor of the parameter's shape and dtype, or null when there is none yet.
   */
  public FusedAdamW(
      List<Group> groups, double beta1, double beta2, double eps, Function<Tensor, Tensor> gradOf) {
    this.gradOf = gradOf;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    for (Group g : groups) {
      GroupState s = new GroupState(g);
      for (Tensor p : g.params().values()) {
        s.params.add(p);
        s.expAvg.add(Torch.zeros(DType.F32, p.device(), p.shape()).retain());
        s.expAvgSq.add(Torch.zeros(DType.F32, p.device(), p.shape()).retain());
        s.steps.add(
            Torch.zeros(DType.F32, p.device()).retain()); // 0-dim, on the parameter's device
      }
      s.paramList = list(s.params);
      s.avgList = list(s.expAvg);
      s.sqList = list(s.expAvgSq);
      s.stepList = list(s.steps);
      s.emptyList = list(List.of());
      this.groups.add(s);
    }
  }

  private static IValue list(List<Tensor> ts) {
    GenericList l = new GenericList(TENSOR_T);
    for (Tensor t : ts) l.push_back(new IValue(t.raw()));
    return new IValue(l);
  }

  /** One update of every parameter that has a gradient, at learning rate {@code lr}. */
  public void step(double lr) {
    step(lr, null, null);
  }

  /**
   * One update at learning rate {@code lr}, all on the device: every gradient is divided by {@code
   * gradScale} (a 0-dim float32 tensor, e.g. from {@link #clipScale}; null for none) inside the
   * kernel, and when {@code foundInf} (0-dim float32, 1 or 0; null for none) is 1 nothing changes,
   * not even the step counts, as {@code torch.amp.GradScaler} skips a step. Neither is read on the
   * host, so the step does not wait for the GPU.
   */
  public void step(double lr, Tensor gradScale, Tensor foundInf) {
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
        if (foundInf == null)
          addScalar.callBoxed(new IValueVector(s.stepList, new IValue(new Scalar(1.0))));
        else
          addTensor.callBoxed(
              new IValueVector(
                  s.stepList,
                  new IValue(foundInf.neg().add(1.0).raw()),
                  new IValue(new Scalar(1.0))));
        adamw.callBoxed(
            new IValueVector(
                s.paramList,
                list(grads),
                s.avgList,
                s.sqList,
                s.emptyList,
                s.stepList,
                new IValue(lr),
                new IValue(beta1),
                new IValue(beta2),
                new IValue(s.group.weightDecay()),
                new IValue(eps),
                new IValue(false),
                new IValue(false),
                gradScale == null ? new IValue() : new IValue(gradScale.raw()),
                foundInf == null ? new IValue() : new IValue(foundInf.raw())));
      }
    }
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
    if (norms.isEmpty()) return Torch.zeros(DType.F32, dev.hanlin.torch.Device.CPU);
    return Torch.vectorNorm(Torch.stack(norms, 0), DType.F32);
  }

  /**
   * What {@link #step(double, Tensor, Tensor)} divides gradients by so that their norm is at most
   * {@code maxNorm}: {@code max(1, (norm + 1e-6) / maxNorm)}, the reciprocal of {@code
   * torch.nn.utils.clip_grad_norm_}'s clip coefficient; null when {@code maxNorm <= 0} (no
   * clipping).
   */
  public static Tensor clipScale(Tensor norm, double maxNorm) {
    return maxNorm > 0 ? norm.add(1e-6).div(maxNorm).clampMin(1.0) : null;
  }

  /** Zeroes every gradient in place (the gradient tensors are kept for the next backward). */
  public void zeroGrad() {
    for (GroupState s : groups) {
      try (Scope scope = Scope.open()) {
        List<Tensor> grads = new ArrayList<>();
        for (Tensor p : s.params) {
          Tensor g = p.grad();
          if (g != null) grads.add(g);
        }
        if (!grads.isEmpty()) zero.callBoxed(new IValueVector(list(grads)));
      }
    }
  }

  /**
   * Scales gradients so that their global L2 norm is at most {@code maxNorm}; returns the norm
   * before scaling (NaN or infinite when a gradient is). {@code maxNorm <= 0} only measures.
   */
  public double clipGradNorm(double maxNorm) {
    List<Tensor> all = new ArrayList<>();
    for (GroupState s : groups) all.addAll(s.params);
    return clipGradNorm(all, maxNorm);
  }

  /** Zeroes the gradients of {@code params} in place, whichever optimizer updates them. */
  public static void zeroGrads(Collection<Tensor> params) {
    try (Scope scope = Scope.open()) {
      for (Tensor p : params) if (p.grad() != null) p.grad().raw().zero_();
    }
  }

  /**
   * {@link #clipGradNorm(double)} over {@code params}: all the model's parameters when each rank's
   * optimizer holds only its shard of them.
   */
  public static double clipGradNorm(Collection<Tensor> params, double maxNorm) {
    try (Scope scope = Scope.open()) {
      // without clipping, only the norm: libtorch's clip takes a float max (Double.MAX_VALUE
      // overflows it)
      if (!(maxNorm > 0)) return gradNorm(params).item();
      TensorVector v = new TensorVector();
      for (Tensor p : params) v.push_back(p.raw());
      return torch.clip_grad_norm_(v, maxNorm, 2.0, false);
    }
  }

  /** The kinds of state each parameter has: {@link #state()} keys are {@code <kind>.<param>}. */
  public static final List<String> STATE_KINDS = List.of("exp_avg", "exp_avg_sq", "step");

  /**
   * The optimizer state under {@code exp_avg.<param>}, {@code exp_avg_sq.<param>}, {@code
   * step.<param>}.
   */
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

  /** Copies a saved {@link #state()} into this optimizer; every key must be present. */
  public void loadState(Map<String, Tensor> saved) {
    try (Scope scope = Scope.open()) {
      for (var e : state().entrySet()) {
        Tensor src = saved.get(e.getKey());
        if (src == null) throw new IllegalArgumentException("optimizer state lacks " + e.getKey());
        if (!java.util.Arrays.equals(src.shape(), e.getValue().shape()))
          throw new IllegalArgumentException(
              "optimizer state "
                  + e.getKey()
                  + " has shape "
                  + java.util.Arrays.toString(src.shape())
                  + ", expected "
                  + java.util.Arrays.toString(e.getValue().shape()));
        e.getValue().copy_(src);
      }
    }
  }
}
