package dev.hanlin.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.LoraAdapters;
import dev.hanlin.model.PeftAdapter;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import dev.hanlin.torch.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * {@code output/checkpoint-<step>/}: HF-format weights (fp32 masters), {@code
 * optimizer.safetensors}, {@code rng_state.safetensors}, {@code trainer_state.json} (step, data
 * cursor, ...). A checkpoint is written into a hidden temporary folder, every file fsynced, then
 * renamed into place, and {@code trainer_state.json} is the last file written: a folder named
 * {@code checkpoint-N} is always complete, whatever kills the process.
 */
public final class Checkpoints {
  static final Pattern NAME = Pattern.compile("checkpoint-(\\d+)");
  static final String STATE = "trainer_state.json";
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private Checkpoints() {}

  /** What a checkpoint holds. */
  public record Loaded(
      Map<String, Tensor> weights, Map<String, Tensor> optimizer, Tensor rng, TrainerState state) {}

  /** Writes {@code output/checkpoint-<step>} atomically; returns its path. */
  public static Path save(
      Path output,
      LlamaModel model,
      Map<String, Tensor> optimizerState,
      Tensor rngState,
      TrainerState state,
      String resolvedConfigYaml)
      throws IOException {
    return save(
        output,
        tmp -> HfCheckpoint.save(model, tmp, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES),
        optimizerState,
        rngState,
        state,
        resolvedConfigYaml);
  }

  /**
   * A LoRA run's checkpoint: the adapter folder (PEFT layout) instead of the full weights, which
   * the frozen base makes redundant; optimizer, RNG and trainer state as for {@link #save}.
   */
  public static Path saveAdapter(
      Path output,
      LoraAdapters adapters,
      Map<String, Tensor> optimizerState,
      Tensor rngState,
      TrainerState state,
      String resolvedConfigYaml)
      throws IOException {
    return save(
        output,
        tmp -> PeftAdapter.save(adapters, tmp, "checkpoint"),
        optimizerState,
        rngState,
        state,
        resolvedConfigYaml);
  }

  private interface WeightsWriter {
    void write(Path folder) throws IOException;
  }

  private static Path save(
      Path output,
      WeightsWriter weights,
      Map<String, Tensor> optimizerState,
      Tensor rngState,
      TrainerState state,
      String resolvedConfigYaml)
      throws IOException {
    Path dir = output.resolve("checkpoint-" + state.step());
    Path tmp = output.resolve(".checkpoint-" + state.step() + ".tmp");
    deleteTree(tmp);
    try {
      Files.createDirectories(tmp);
      weights.write(tmp);
      SafetensorsWriter.write(tmp.resolve("optimizer.safetensors"), optimizerState);
      SafetensorsWriter.write(tmp.resolve("rng_state.safetensors"), Map.of("cpu", rngState));
      write(tmp.resolve("config.yaml"), resolvedConfigYaml);
      write(tmp.resolve(STATE), JSON.writeValueAsString(state));
      fsyncDir(tmp);
      deleteTree(dir); // a checkpoint of the same step from an earlier, diverged run
      try {
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, dir);
      }
      fsyncDir(output);
    } catch (IOException | RuntimeException e) {
      deleteTree(tmp);
      throw new IOException(
          "cannot write checkpoint "
              + dir
              + " ("
              + e.getMessage()
              + "); earlier checkpoints are intact",
          e);
    }
    return dir;
  }

  /** Loads a checkpoint folder's tensors onto {@code device} (weights in {@code dtype}). */
  public static Loaded load(Path dir, DType dtype, Device device) throws IOException {
    Path statePath = dir.resolve(STATE);
    if (!Files.exists(statePath))
      throw new IOException(dir + " is not a complete checkpoint (no " + STATE + ")");
    TrainerState state = JSON.readValue(statePath.toFile(), TrainerState.class);
    Map<String, Tensor> weights = new LinkedHashMap<>();
    if (Files.exists(dir.resolve(PeftAdapter.CONFIG))) { // a LoRA run: adapter names, no prefix
      try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PeftAdapter.WEIGHTS))) {
        for (String n : f.names())
          weights.put(
              n.substring("base_model.model.".length()), f.load(n, DType.F32, device).retain());
      }
    } else weights = HfCheckpoint.load(dir, dtype, device).weights();
    Map<String, Tensor> opt = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("optimizer.safetensors"))) {
      // on the host: the optimizer copies what it keeps onto its device, and the rest (another
      // rank's share with zero_stage 1) never takes device memory
      for (String n : f.names()) opt.put(n, f.load(n, f.info(n).dtype(), Device.CPU).retain());
    }
    Tensor rng;
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("rng_state.safetensors"))) {
      rng = f.load("cpu").retain();
    }
    return new Loaded(weights, opt, rng, state);
  }

  /** The complete checkpoint with the highest step, if any. */
  public static Optional<Path> latest(Path output) throws IOException {
    return list(output).stream().reduce((a, b) -> b);
  }

  /** Complete checkpoints, oldest first. */
  public static List<Path> list(Path output) throws IOException {
    if (!Files.isDirectory(output)) return List.of();
    try (Stream<Path> s = Files.list(output)) {
      return s.filter(p -> NAME.matcher(p.getFileName().toString()).matches())
          .filter(p -> Files.exists(p.resolve(STATE)))
          .sorted(Comparator.comparingLong(Checkpoints::stepOf))
          .toList();
    }
  }

  static long stepOf(Path p) {
    Matcher m = NAME.matcher(p.getFileName().toString());
    if (!m.matches()) throw new IllegalArgumentException(p + " is not a checkpoint folder");
    return Long.parseLong(m.group(1));
  }

  /** Deletes the oldest checkpoints beyond {@code limit} (0 keeps all), and stale temp folders. */
  public static void prune(Path output, int limit) throws IOException {
    try (Stream<Path> s = Files.list(output)) {
      for (Path p :
          s.filter(p -> p.getFileName().toString().matches("\\.checkpoint-\\d+\\.tmp")).toList())
        deleteTree(p);
    }
    if (limit <= 0) return;
    List<Path> all = list(output);
    for (int i = 0; i < all.size() - limit; i++) deleteTree(all.get(i));
  }

  static void write(Path file, String text) throws IOException {
    try (FileChannel ch =
        FileChannel.open(
            file,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      ch.write(java.nio.ByteBuffer.wrap(text.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
      ch.force(true);
    }
  }

  static void fsyncDir(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException ignored) {
      // some file systems cannot fsync a directory; the rename is still atomic
    }
  }

  static void deleteTree(Path p) throws IOException {
    if (!Files.exists(p)) return;
    try (Stream<Path> s = Files.walk(p)) {
      s.sorted(Comparator.reverseOrder())
          .forEach(
              x -> {
                try {
                  Files.delete(x);
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              });
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }
}
