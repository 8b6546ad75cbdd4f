package dev.hanlin.train.explicit;

import dev.hanlin.model.LlamaModel;
import java.io.PrintStream;

/**
 * The one place that decides whether a run can take the explicit backward: what it does not support
 * falls back to the autograd paths, and the reason is said once.
 */
public final class ExplicitSupport {
  private ExplicitSupport() {}

  /**
   * Why {@code model} trained with {@code zeroStage} cannot use the explicit backward, or null when
   * it can (on any number of ranks: DDP and ZeRO-1 all-reduce its gradients by backward stages,
   * ZeRO-2 reduces them so).
   */
  public static String unsupported(LlamaModel model, int zeroStage) {
    if (!model.quantizedWeights().isEmpty()) return "a quantized base (lora.load_in_bits)";
    if (model.config().attentionBias() || model.config().mlpBias())
      return "projection biases (attention_bias / mlp_bias)";
    if (zeroStage >= 3) return "zero_stage 3 (its gathered weights live in autograd hooks)";
    return null;
  }

  /**
   * Whether the run takes the explicit backward: when {@code requested} and supported; when
   * requested but not supported, says why on {@code err} (null: silently, as on ranks other than
   * the main one).
   */
  public static boolean use(boolean requested, LlamaModel model, int zeroStage, PrintStream err) {
    if (!requested) return false;
    String why = unsupported(model, zeroStage);
    if (why != null && err != null)
      err.println("explicit_backward: not supported with " + why + "; using autograd's backward");
    return why == null;
  }
}
