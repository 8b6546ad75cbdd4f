package dev.hanlin.torch;

import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.NoGradGuard;

/**
 * Autograd switches as try-with-resources guards. They are thread-local C++ RAII objects: open and
 * close them on the same thread (javacpp-pytorch.md, pitfall 10).
 */
public final class Grad {
  private Grad() {}

  /** Disables gradient recording until closed. */
  public static Guard noGrad() {
    NoGradGuard g = new NoGradGuard();
    return g::close;
  }

  /** Inference mode (no autograd bookkeeping at all) until closed; for generation and eval. */
  public static Guard inference() {
    InferenceMode m = new InferenceMode();
    return m::close;
  }

  /** A guard whose close does not throw. */
  @FunctionalInterface
  public interface Guard extends AutoCloseable {
    @Override
    void close();
  }
}
