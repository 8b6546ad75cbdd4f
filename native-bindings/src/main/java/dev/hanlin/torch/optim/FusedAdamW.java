package dev.hanlin.torch.optim;

import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import java.util.List;
import org.bytedeco.pytorch.Dispatcher;
import org.bytedeco.pytorch.GenericList;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueVector;
import org.bytedeco.pytorch.OperatorHandle;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.TensorType;
import org.bytedeco.pytorch.Type;

/**
 * The kernel of {@code torch.optim.AdamW(fused=True)}: one {@code aten::_fused_adamw_} call through
 * the dispatcher (javacpp-pytorch.md §5), on CPU and CUDA alike. It keeps no state: the optimizer
 * (parameter groups, moments, step counts, saving them) is the trainer's ({@code
 * dev.hanlin.train.optim.AdamW}).
 */
public final class FusedAdamW {
  private FusedAdamW() {}

  /** AdamW's constants besides the learning rate and weight decay. */
  public record Betas(double beta1, double beta2, double eps) {}

  // Made once, at class initialisation, which may run inside a caller's Scope: retained, so that
  // closing that scope does not free them.
  private static final Type.TypePtr TENSOR_T = new Type.TypePtr(TensorType.get()).retainReference();
  private static final OperatorHandle ADAMW = op("aten::_fused_adamw_", "");
  private static final OperatorHandle ADD_SCALAR = op("aten::_foreach_add_", "Scalar");
  private static final OperatorHandle ADD_TENSOR = op("aten::_foreach_add_", "Tensor");

  private static OperatorHandle op(String name, String overload) {
    return Dispatcher.singleton().findSchemaOrThrow(name, overload).retainReference();
  }

  private static IValue list(List<Tensor> ts) {
    GenericList l = new GenericList(TENSOR_T);
    for (Tensor t : ts) l.push_back(new IValue(t.raw()));
    return new IValue(l);
  }

  /**
   * Counts a step in {@code steps} (0-dim float32 tensors, one per parameter) and updates {@code
   * params} in place from {@code grads} and the moments {@code expAvg}, {@code expAvgSq}, all on
   * the device: every gradient is divided by {@code gradScale} (0-dim float32; null for none)
   * inside the kernel, and when {@code foundInf} (0-dim float32, 1 or 0; null for none) is 1
   * nothing changes, not even the step counts, as {@code torch.amp.GradScaler} skips a step.
   * Neither is read on the host, so the call does not wait for the GPU.
   */
  public static void step(
      List<Tensor> params,
      List<Tensor> grads,
      List<Tensor> expAvg,
      List<Tensor> expAvgSq,
      List<Tensor> steps,
      double lr,
      double weightDecay,
      Betas b,
      Tensor gradScale,
      Tensor foundInf) {
    // with the optimizer offloaded to the host, the step's norm and skip flag are still computed
    // on the GPU: the kernels take them on the parameters' device (CUDA -> CPU waits for the GPU,
    // which the host update has to do anyway)
    if (!params.isEmpty()) {
      Device where = params.get(0).device();
      if (gradScale != null && !gradScale.device().equals(where)) gradScale = gradScale.to(where);
      if (foundInf != null && !foundInf.device().equals(where)) foundInf = foundInf.to(where);
    }
    IValue stepList = list(steps);
    if (foundInf == null)
      ADD_SCALAR.callBoxed(new IValueVector(stepList, new IValue(new Scalar(1.0))));
    else
      ADD_TENSOR.callBoxed(
          new IValueVector(
              stepList, new IValue(foundInf.neg().add(1.0).raw()), new IValue(new Scalar(1.0))));
    ADAMW.callBoxed(
        new IValueVector(
            list(params),
            list(grads),
            list(expAvg),
            list(expAvgSq),
            list(List.of()),
            stepList,
            new IValue(lr),
            new IValue(b.beta1()),
            new IValue(b.beta2()),
            new IValue(weightDecay),
            new IValue(b.eps()),
            new IValue(false),
            new IValue(false),
            gradScale == null ? new IValue() : new IValue(gradScale.raw()),
            foundInf == null ? new IValue() : new IValue(foundInf.raw())));
  }
}
