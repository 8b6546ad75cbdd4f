package dev.hanlin.torch;

import org.bytedeco.javacpp.PointerScope;

/**
 * Frees every native object made inside it when closed: one per training step, batch or decode
 * step. The GC cannot see native or GPU memory (javacpp-pytorch.md §9), so code that makes tensors
 * in a loop opens a scope per iteration. Scopes are thread-local and nest.
 */
public final class Scope implements AutoCloseable {
  private final PointerScope outer;
  private final PointerScope scope;

  static {
    JavaCppSettings.apply(); // before JavaCPP's Pointer class reads its settings
  }

  private Scope() {
    this.outer = PointerScope.getInnerScope();
    this.scope = new PointerScope();
  }

  public static Scope open() {
    return new Scope();
  }

  /**
   * Moves a tensor out of this scope into the enclosing one, which frees it when it closes; with no
   * enclosing scope the tensor is retained (see {@link Tensor#retain()}). For results of a nested
   * scope, such as one layer's output. Long-lived tensors (weights, caches) use {@link
   * Tensor#retain()} instead, which survives every scope.
   */
  public Tensor keep(Tensor t) {
    if (outer == null) return t.retain();
    outer.attach(t.raw());
    return t;
  }

  @Override
  public void close() {
    scope.close();
  }
}
