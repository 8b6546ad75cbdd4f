package dev.hanlin.model;

/**
 * How rotary position frequencies are rescaled for contexts longer than training (HF {@code
 * rope_scaling} / {@code rope_parameters}).
 */
public sealed interface RopeScaling {
  /** The HF {@code rope_type} string. */
  String type();

  /** Plain RoPE. */
  record None() implements RopeScaling {
    @Override
    public String type() {
      return "default";
    }
  }

  /** Position interpolation: positions divided by {@code factor}. */
  record Linear(double factor) implements RopeScaling {
    public Linear {
      if (!(factor >= 1)) throw new IllegalArgumentException("rope_scaling.factor must be >= 1");
    }

    @Override
    public String type() {
      return "linear";
    }
  }

  /** Dynamic NTK: the base grows once the sequence passes max_position_embeddings. */
  record Dynamic(double factor) implements RopeScaling {
    public Dynamic {
      if (!(factor >= 1)) throw new IllegalArgumentException("rope_scaling.factor must be >= 1");
    }

    @Override
    public String type() {
      return "dynamic";
    }
  }

  /** Llama 3.1's frequency-dependent scaling. */
  record Llama3(
      double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions)
      implements RopeScaling {
    public Llama3 {
      if (!(factor >= 1)) throw new IllegalArgumentException("rope_scaling.factor must be >= 1");
      if (!(highFreqFactor > lowFreqFactor))
        throw new IllegalArgumentException(
            "rope_scaling.high_freq_factor must exceed low_freq_factor");
      if (originalMaxPositions <= 0)
        throw new IllegalArgumentException(
            "rope_scaling.original_max_position_embeddings must be > 0");
    }

    @Override
    public String type() {
      return "llama3";
    }
  }
}
