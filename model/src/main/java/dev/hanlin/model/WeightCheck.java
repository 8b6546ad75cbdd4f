package dev.hanlin.model;

import dev.hanlin.config.ConfigException;
import dev.hanlin.torch.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/** Checks named tensors against the names and shapes a config implies, for models and adapters. */
final class WeightCheck {
  private WeightCheck() {}

  /**
   * {@code weights} in the order of {@code expected}; an error names every missing and unexpected
   * tensor (the first few) and the first tensor whose shape differs.
   */
  static Map<String, Tensor> match(
      String what, Map<String, long[]> expected, Map<String, Tensor> weights) {
    TreeSet<String> missing = new TreeSet<>(expected.keySet());
    missing.removeAll(weights.keySet());
    TreeSet<String> unexpected = new TreeSet<>(weights.keySet());
    unexpected.removeAll(expected.keySet());
    if (!missing.isEmpty() || !unexpected.isEmpty())
      throw new ConfigException(
          what
              + " do not match the config: missing "
              + abbreviate(missing)
              + ", unexpected "
              + abbreviate(unexpected));
    Map<String, Tensor> ordered = new LinkedHashMap<>();
    for (var e : expected.entrySet()) {
      Tensor t = weights.get(e.getKey());
      if (!Arrays.equals(t.shape(), e.getValue()))
        throw new ConfigException(
            e.getKey()
                + " has shape "
                + Arrays.toString(t.shape())
                + ", the config expects "
                + Arrays.toString(e.getValue()));
      ordered.put(e.getKey(), t);
    }
    return ordered;
  }

  private static String abbreviate(TreeSet<String> names) {
    if (names.isEmpty()) return "none";
    List<String> l = new ArrayList<>(names);
    return l.size() <= 6 ? l.toString() : l.subList(0, 6) + " and " + (l.size() - 6) + " more";
  }
}
