package dev.hanlin.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.hanlin.train.PretrainConfig;
import dev.hanlin.train.TrainingRun;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * The options of the training modes ({@code pretrain}, {@code sft}): the YAML config, the keys set
 * over it ({@code --set}, and Llama2-Chinese's flags, which each mode collects itself: picocli does
 * not take {@code @Unmatched} from a mixin) and where the run starts. {@code --config}'s help
 * differs by mode, so it comes from RunOptions.properties beside this class.
 */
final class RunOptions {
  @Option(names = "--config", descriptionKey = "config", description = "YAML config.")
  Path config;

  @Option(names = "--set", description = "Override a key: --set learning_rate=1e-4 (repeatable).")
  List<String> sets = List.of();

  @Option(names = "--overwrite-output-dir", description = "Start afresh instead of resuming.")
  boolean overwrite;

  @Option(names = "--resume-from", description = "Resume from this checkpoint folder.")
  Path resumeFrom;

  /**
   * The keys set on the command line, in rising precedence: Llama2-Chinese's flags (their notes
   * printed), then this mode's own options.
   */
  Map<String, Object> overrides(HfFlags.Parsed hf) throws IOException {
    hf.notes().forEach(n -> System.err.println("note: " + n));
    Map<String, Object> overrides = new LinkedHashMap<>(hf.keys());
    overrides.putAll(overrides(sets));
    if (overwrite) overrides.put("overwrite_output_dir", true);
    if (resumeFrom != null) overrides.put("resume_from_checkpoint", resumeFrom.toString());
    return overrides;
  }

  /** {@code key=value} pairs, values read as YAML scalars or flow collections. */
  static Map<String, Object> overrides(List<String> sets) throws IOException {
    ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
    Map<String, Object> out = new LinkedHashMap<>();
    for (String s : sets) {
      int eq = s.indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException("--set expects key=value, got '" + s + "'");
      String v = s.substring(eq + 1);
      out.put(s.substring(0, eq), v.isEmpty() ? null : yaml.readValue(v, Object.class));
    }
    return out;
  }

  /** Runs the trainer on {@code cfg}, saving it as resolved beside the run's output. */
  static void train(PretrainConfig cfg) throws Exception {
    String resolved = new ObjectMapper(new YAMLFactory()).writeValueAsString(cfg);
    new TrainingRun(cfg, resolved, System.err).run();
  }
}
