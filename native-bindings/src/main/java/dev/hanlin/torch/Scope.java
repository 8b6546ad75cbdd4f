package dev.hanlin.torch;

import org.bytedeco.javacpp.PointerScope;

/**
 * Frees every native object made inside it when closed: one per training step, batch or decode
 * step. The GC cannot see native or GPU memory (javacpp-pytorch.md §9), so code that makes tensors
 * in a loop opens a scope per iteration. Scopes are thread-local and nest.
 */
public final class Scope implements AutoCloseable {
  private final PointerScope scope;

  private Scope() {
    this.scope = new PointerScope();
  }

  public static Scope open() {
    return new Scope();
  }

  /** Moves a tensor out of this scope into the enclosing one (or to the GC); returns it. */
  public Tensor keep(Tensor t) {
    return t.retain();
  }

  @Override
  public void close() {
    scope.close();
  }
}
