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
import dev.hanlin.torch.dist.Dist;
import dev.hanlin.torch.dist.Group;
import dev.hanlin.torch.io.AtomicFiles;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import dev.hanlin.torch.safetensors.SafetensorsWriter;
import dev.hanlin.train.parallel.Zero3Layout;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * {@code output/checkpoint-<step>/}: HF-format weights (fp32 masters), the optimizer state, {@code
 * rng_state.safetensors} (the CPU generator's state as {@code cpu}, and on a GPU that device's as
 * {@code cuda}), {@code trainer_state.json} (step, data cursor, ...). The optimizer state is one
 * {@code optimizer.safetensors}, or with sharded optimizer state (zero_stage 1 or 2 on several
 * ranks) one {@code optimizer-rank-R-of-N.safetensors} per rank holding what that rank updates;
 * either resumes with any world size and zero_stage. A checkpoint is written into a hidden
 * temporary folder, every file fsynced, then renamed into place, and {@code trainer_state.json} is
 * the last file written: a folder named {@code checkpoint-N} is always complete, whatever kills the
 * process (or fails on any rank).
 */
public final class Checkpoints {
  static final Pattern NAME = Pattern.compile("checkpoint-(\\d+)");
  public static final String STATE = "trainer_state.json";
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private Checkpoints() {}

  static final String OPTIMIZER = "optimizer.safetensors";
  static final Pattern OPTIMIZER_SHARD =
      Pattern.compile("optimizer-rank-(\\d+)-of-(\\d+)\\.safetensors");

  /** The file of rank {@code rank}'s optimizer state in a checkpoint of {@code world} ranks. */
  public static String optimizerShard(int rank, int world) {
    return "optimizer-rank-" + rank + "-of-" + world + ".safetensors";
  }

  /**
   * What a checkpoint holds. The optimizer state stays in its files until {@link #optimizer} reads
   * the part a rank needs.
   */
  public record Loaded(
      Path dir, Map<String, Tensor> weights, Map<String, Tensor> rng, TrainerState state) {
    /**
     * The optimizer state under {@code keys} ({@code <kind>.<parameter>}), from whichever of the
     * checkpoint's optimizer files holds each (the whole {@code optimizer.safetensors}, or the rank
     * files of a sharded save), as retained host copies for the caller to release: a rank reads
     * only its share, and it never takes device memory before the optimizer copies it.
     */
    public Map<String, Tensor> optimizer(Collection<String> keys) throws IOException {
      if (Zero3Layout.isIn(dir)) // ZeRO-3's flat shards: each tensor assembled from the ranks'
      return Zero3Layout.read(dir).assemble(dir, true, keys, DType.F32, Device.CPU);
      List<Path> files = optimizerFiles(dir);
      List<SafetensorsFile> open = new ArrayList<>();
      Map<String, Tensor> out = new LinkedHashMap<>();
      try {
        Map<String, SafetensorsFile> where = new HashMap<>();
        for (Path f : files) {
          SafetensorsFile sf = SafetensorsFile.open(f);
          open.add(sf);
          for (String n : sf.names()) where.putIfAbsent(n, sf);
        }
        for (String k : keys) {
          SafetensorsFile sf = where.get(k);
          if (sf == null)
            throw new IOException(
                "checkpoint "
                    + dir
                    + ": optimizer state '"
                    + k
                    + "' is in none of "
                    + files.stream().map(p -> p.getFileName().toString()).toList());
          out.put(k, sf.load(k, sf.info(k).dtype(), Device.CPU).retain());
        }
        return out;
      } catch (IOException | RuntimeException e) {
        out.values().forEach(Tensor::release);
        throw e;
      } finally {
        open.forEach(SafetensorsFile::close);
      }
    }
  }

  /**
   * A checkpoint's optimizer files: {@code optimizer.safetensors}, or every rank's file of a
   * sharded save, which must all be there.
   */
  static List<Path> optimizerFiles(Path dir) throws IOException {
    List<Path> files = new ArrayList<>();
    if (Files.exists(dir.resolve(OPTIMIZER))) files.add(dir.resolve(OPTIMIZER));
    int world = -1;
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.sorted().toList()) {
        Matcher m = OPTIMIZER_SHARD.matcher(p.getFileName().toString());
        if (!m.matches()) continue;
        int n = Integer.parseInt(m.group(2));
        if (world >= 0 && n != world)
          throw new IOException(
              dir + " has optimizer files of " + world + " and of " + n + " ranks: " + p);
        world = n;
      }
    }
    for (int r = 0; r < world; r++) {
      Path p = dir.resolve(optimizerShard(r, world));
      if (!Files.exists(p))
        throw new IOException(
            "checkpoint "
                + dir
                + " lacks "
                + p.getFileName()
                + " (rank "
                + r
                + "'s optimizer state)");
      files.add(p);
    }
    if (files.isEmpty())
      throw new IOException(
          "checkpoint "
              + dir
              + " has no optimizer state ("
              + OPTIMIZER
              + " or optimizer-rank-R-of-N.safetensors)");
    return files;
  }

  /**
   * One component's part of a checkpoint: the files it writes into the checkpoint's folder. The
   * parts are the model's weights, the optimizer state, the random state and the resolved config;
   * the trainer state (step, data cursor) is written last by {@link #save}, as the mark of a
   * complete checkpoint.
   */
  public interface Part {
    void write(Path folder, Dist dist) throws IOException;

    /** Every rank writes its own files (sharded optimizer state); otherwise only the main rank. */
    default boolean perRank() {
      return false;
    }

    /** {@code p}, written by every rank into its own files. */
    static Part perRank(Part p) {
      return new Part() {
        @Override
        public void write(Path dir, Dist d) throws IOException {
          p.write(dir, d);
        }

        @Override
        public boolean perRank() {
          return true;
        }
      };
    }

    /** Tensors in one safetensors file. */
    static Part tensors(String file, Map<String, Tensor> tensors) {
      return (dir, d) -> SafetensorsWriter.write(dir.resolve(file), tensors);
    }

    /** A text file. */
    static Part text(String file, String text) {
      return (dir, d) -> Checkpoints.write(dir.resolve(file), text);
    }

    /**
     * The optimizer state: the whole of it in {@code optimizer.safetensors}, or with {@code
     * sharded} each rank's share (the parameters it updates) in its own {@code
     * optimizer-rank-R-of-N.safetensors}, with nothing gathered anywhere.
     */
    static Part optimizer(Map<String, Tensor> state, boolean sharded) {
      if (!sharded) return tensors(OPTIMIZER, state);
      return new Part() {
        @Override
        public void write(Path dir, Dist d) throws IOException {
          SafetensorsWriter.write(dir.resolve(optimizerShard(d.rank(), d.worldSize())), state);
        }

        @Override
        public boolean perRank() {
          return true;
        }
      };
    }
  }

  /** How a checkpoint's weights go into its folder: the model's part. */
  public interface Weights extends Part {
    void write(Path folder) throws IOException;

    @Override
    default void write(Path folder, Dist dist) throws IOException {
      write(folder);
    }

    /** The full model in HF's layout. */
    static Weights of(LlamaModel model) {
      return dir -> HfCheckpoint.save(model, dir, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES);
    }

    /**
     * A LoRA run's adapter folder (PEFT layout) instead of the full weights, which the frozen base
     * makes redundant.
     */
    static Weights of(LoraAdapters adapters) {
      return dir -> PeftAdapter.save(adapters, dir, "checkpoint");
    }
  }

  /** The parts of a checkpoint as the trainer writes them, in the order they are written. */
  public static Map<String, Part> parts(
      Weights weights,
      Map<String, Tensor> optimizerState,
      boolean sharded,
      Map<String, Tensor> rngState,
      String resolvedConfigYaml) {
    Map<String, Part> parts = new LinkedHashMap<>();
    parts.put("model", weights);
    parts.put("optimizer", Part.optimizer(optimizerState, sharded));
    parts.put("rng", Part.tensors("rng_state.safetensors", rngState));
    parts.put("config", Part.text("config.yaml", resolvedConfigYaml));
    return parts;
  }

  /** Writes {@code output/checkpoint-<step>} atomically from one process; returns its path. */
  public static Path save(
      Path output,
      LlamaModel model,
      Map<String, Tensor> optimizerState,
      Map<String, Tensor> rngState,
      TrainerState state,
      String resolvedConfigYaml)
      throws IOException {
    return save(
        Group.single(),
        output,
        Weights.of(model),
        optimizerState,
        false,
        rngState,
        state,
        resolvedConfigYaml);
  }

  /**
   * Writes {@code output/checkpoint-<step>} atomically; every rank of {@code group} calls it and
   * gets its path, or every rank throws and no {@code checkpoint-<step>} folder exists (earlier
   * checkpoints are left as they were). {@code sharded}: each rank writes {@code optimizerState},
   * the state of the parameters it updates, to its own {@code optimizer-rank-R-of-N.safetensors},
   * with nothing gathered anywhere; otherwise {@code optimizerState} is the whole state and only
   * the main rank's is written. The main rank writes the rest ({@code rngState} and {@code state}
   * are its own), {@code trainer_state.json} last, and renames the folder into place.
   */
  public static Path save(
      Group group,
      Path output,
      Weights weights,
      Map<String, Tensor> optimizerState,
      boolean sharded,
      Map<String, Tensor> rngState,
      TrainerState state,
      String resolvedConfigYaml)
      throws IOException {
    return save(
        group,
        output,
        parts(weights, optimizerState, sharded, rngState, resolvedConfigYaml),
        state);
  }

  /**
   * Writes {@code output/checkpoint-<step>} atomically from {@code parts}; every rank of {@code
   * group} calls it and gets its path, or every rank throws and no {@code checkpoint-<step>} folder
   * exists (earlier checkpoints are left as they were). Each rank writes the {@link Part#perRank}
   * parts; the main rank then writes the others in order, {@code trainer_state.json} ({@code
   * state}, its own) last, and renames the folder into place.
   */
  public static Path save(Group group, Path output, Map<String, Part> parts, TrainerState state)
      throws IOException {
    Path dir = output.resolve("checkpoint-" + state.step());
    Path tmp = output.resolve(".checkpoint-" + state.step() + ".tmp");
    Dist d = group.dist();
    // 1. the main rank makes the folder every rank writes into
    Exception failed =
        !d.isMain()
            ? null
            : attempt(
                () -> {
                  deleteTree(tmp);
                  Files.createDirectories(tmp);
                });
    // 2. each rank writes its own parts (its share of the optimizer state)
    if (!group.any(failed != null))
      failed =
          attempt(
              () -> {
                for (Part p : parts.values()) if (p.perRank()) p.write(tmp, d);
              });
    // 3. the main rank writes the rest, trainer_state.json last, and renames the folder
    if (!group.any(failed != null) && d.isMain())
      failed =
          attempt(
              () -> {
                for (Part p : parts.values()) if (!p.perRank()) p.write(tmp, d);
                write(tmp.resolve(STATE), JSON.writeValueAsString(state));
                AtomicFiles.fsyncDirectory(tmp);
                deleteTree(dir); // a checkpoint of the same step from an earlier, diverged run
                AtomicFiles.commit(tmp, dir);
              });
    if (!group.any(failed != null)) return dir;
    if (d.isMain()) {
      Exception cleanup = attempt(() -> deleteTree(tmp));
      if (failed == null) failed = cleanup;
    }
    String why =
        failed != null ? failed.getMessage() : "another rank failed to write its part; see its log";
    throw new IOException(
        "cannot write checkpoint "
            + dir
            + (d.isDistributed() ? " (" + d + ": " : " (")
            + why
            + "); earlier checkpoints are intact",
        failed);
  }

  private interface IoAction {
    void run() throws IOException;
  }

  /** Runs {@code a}; returns its failure, or null. */
  private static Exception attempt(IoAction a) {
    try {
      a.run();
      return null;
    } catch (IOException | RuntimeException e) {
      return e;
    }
  }

  /** Loads a checkpoint folder's tensors onto {@code device} (weights in {@code dtype}). */
  public static Loaded load(Path dir, DType dtype, Device device) throws IOException {
    Path statePath = dir.resolve(STATE);
    if (!Files.exists(statePath))
      throw new IOException(dir + " is not a complete checkpoint (no " + STATE + ")");
    TrainerState state;
    try {
      state = JSON.readValue(statePath.toFile(), TrainerState.class);
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      throw new IOException(damaged(dir, statePath, e.getOriginalMessage()), e);
    }
    if (state == null || state.cursor() == null)
      throw new IOException(damaged(dir, statePath, "no step or data cursor in it"));
    Map<String, Tensor> weights = new LinkedHashMap<>();
    if (Files.exists(dir.resolve(PeftAdapter.CONFIG))) { // a LoRA run: adapter names, no prefix
      try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PeftAdapter.WEIGHTS))) {
        for (String n : f.names())
          weights.put(
              n.substring("base_model.model.".length()), f.load(n, DType.F32, device).retain());
      }
    } else if (Zero3Layout.isIn(dir)) { // ZeRO-3's per-rank shards, assembled whole
      Zero3Layout layout = Zero3Layout.read(dir);
      List<String> names = new ArrayList<>();
      layout.units().forEach(u -> u.tensors().forEach(e -> names.add(e.name())));
      weights = layout.assemble(dir, false, names, dtype, device);
    } else weights = HfCheckpoint.load(dir, dtype, device).weights();
    optimizerFiles(dir); // all there, before the model is built
    Map<String, Tensor> rng = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("rng_state.safetensors"))) {
      for (String n : f.names()) rng.put(n, f.load(n).retain());
    }
    if (!rng.containsKey("cpu"))
      throw new IOException(dir.resolve("rng_state.safetensors") + " has no 'cpu' state");
    return new Loaded(dir, weights, rng, state);
  }

  /** "checkpoint X is damaged: FILE: why; resume from the one before, ...". */
  static String damaged(Path dir, Path file, String why) {
    String before = "";
    try {
      Path parent = dir.toAbsolutePath().getParent();
      long step = stepOf(dir.getFileName());
      before =
          list(parent).stream()
              .filter(p -> stepOf(p) < step)
              .reduce((a, b) -> b)
              .map(p -> "; resume from the one before with --resume-from " + p)
              .orElse("; there is no earlier checkpoint in " + parent);
    } catch (IOException | RuntimeException e) {
      // not a checkpoint-N folder (a --resume-from elsewhere): nothing to suggest
    }
    return "checkpoint "
        + dir
        + " is damaged: "
        + file
        + ": "
        + why
        + before
        + ", or move the damaged one away";
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

  public static void write(Path file, String text) throws IOException {
    AtomicFiles.writeSynced(file, text);
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
