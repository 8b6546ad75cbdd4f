package dev.hanlin.train.parallel;

import dev.hanlin.torch.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where ZeRO-3's setup gets the float32 values of its units, asked for one unit at a time in the
 * layout's order: from weights already in memory ({@link #of}), or made or read as asked (a fresh
 * init, a model folder), so that no rank ever holds the whole model. Closed once setup is done.
 */
public interface UnitWeights extends AutoCloseable {
  /**
   * The values of {@code names} (one unit's weights), float32 on any device: new tensors made in
   * the caller's scope, or tensors held elsewhere; ZeRO-3 empties them once it has its slice.
   */
  Map<String, Tensor> unit(List<String> names);

  @Override
  default void close() {}

  /** The units of weights already in memory, {@code fp32} by name. */
  static UnitWeights of(Map<String, Tensor> fp32) {
    return names -> {
      Map<String, Tensor> out = new LinkedHashMap<>();
      for (String n : names) out.put(n, fp32.get(n));
      return out;
    };
  }
}
