package dev.hanlin.torch;

import org.bytedeco.pytorch.global.torch;

/** A seeded CPU random generator, so that initialization does not depend on global state. */
public final class Generator {
  private final org.bytedeco.pytorch.Generator gen;

  private Generator(org.bytedeco.pytorch.Generator gen) {
    this.gen = gen;
  }

  public static Generator cpu(long seed) {
    return new Generator(torch.createCPUGenerator(seed));
  }

  org.bytedeco.pytorch.Generator raw() {
    return gen;
  }
}
