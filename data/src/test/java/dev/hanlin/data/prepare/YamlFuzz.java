package dev.hanlin.data.prepare;

import java.util.List;
import java.util.Map;

/** The overrides the YAML fuzz targets apply: none, and one as {@code --set} would give. */
final class YamlFuzz {
  private YamlFuzz() {}

  static final List<Map<String, Object>> OVERRIDES = List.of(Map.of(), Map.of("seed", 7));
}
