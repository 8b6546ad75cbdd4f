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
   * Why {@code model} cannot be trained with the explicit backward, or null when it can, whatever
   * the parallelism (DDP and ZeRO-1 all-reduce its gradients by backward stages, ZeRO-2 reduces
   * them so, ZeRO-3 gathers weights and reduce-scatters gradients by the stages it walks).
   */
  public static String unsupported(LlamaModel model) {
    if (!model.quantizedWeights().isEmpty()) return "a quantized base (lora.load_in_bits)";
    if (model.config().attentionBias() || model.config().mlpBias())
      return "projection biases (attention_bias / mlp_bias)";
    return null;
  }

  /**
   * Whether the run takes the explicit backward: when {@code requested} and supported. When
   * requested, says on {@code err} (null: silently, as on ranks other than the main one) that it
   * runs, or why not.
   */
  public static boolean use(boolean requested, LlamaModel model, PrintStream err) {
    if (!requested) return false;
    String why = unsupported(model);
    if (err != null)
      err.println(
          why == null
              ? "explicit_backward: the hand-written block backward runs (not autograd's)"
              : "explicit_backward: not supported with " + why + "; using autograd's backward");
    return why == null;
  }
}
