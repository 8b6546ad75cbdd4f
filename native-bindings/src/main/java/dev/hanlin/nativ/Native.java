package dev.hanlin.nativ;

/** Placeholder. */
public final class Native {
  private Native() {}
}
