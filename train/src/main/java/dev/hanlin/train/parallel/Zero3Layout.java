package dev.hanlin.train.parallel;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import dev.hanlin.train.RecomputingBackward;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How ZeRO-3 lays a model's weights out over the ranks: one flat unit per stage of the recomputing
 * backward (the embedding, each transformer block, the final norm with the head), each the
 * concatenation of its flattened weights, matrices first (weight decay applies to them) then
 * vectors, padded to a multiple of the world size; rank r keeps the elements {@code [r·S, (r+1)·S)}
 * of every unit (S = padded size / world). A checkpoint stores it as {@code zero3-layout.json}
 * beside each rank's shards, so that any world size and any zero stage can find a tensor's
 * elements.
 */
public record Zero3Layout(
    @JsonProperty("format") String format,
    @JsonProperty("version") int version,
    @JsonProperty("world") int world,
    @JsonProperty("units") List<Unit> units) {
  public static final String FILE = "zero3-layout.json";
  static final String FORMAT = "hanlin-zero3";
  static final int VERSION = 1;
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /** A weight's place in its unit: elements {@code [offset, offset + numel)}. */
  public record Entry(
      @JsonProperty("name") String name,
      @JsonProperty("shape") long[] shape,
      @JsonProperty("offset") long offset) {
    public long numel() {
      long n = 1;
      for (long s : shape) n *= s;
      return n;
    }
  }

  /**
   * One flat unit: {@code stage} as {@link RecomputingBackward#stageOf} numbers it, {@code numel}
   * real elements of which the first {@code decay} belong to matrices, {@code shard} per rank.
   */
  public record Unit(
      @JsonProperty("name") String name,
      @JsonProperty("stage") int stage,
      @JsonProperty("numel") long numel,
      @JsonProperty("decay") long decay,
      @JsonProperty("shard") long shard,
      @JsonProperty("tensors") List<Entry> tensors) {}

  /**
   * The layout of weights {@code shapes} (name to shape, in the model's order) over {@code world}.
   */
  public static Zero3Layout of(Map<String, long[]> shapes, int layers, int world) {
    Map<Integer, List<Map.Entry<String, long[]>>> byStage = new LinkedHashMap<>();
    for (var e : shapes.entrySet())
      byStage
          .computeIfAbsent(RecomputingBackward.stageOf(e.getKey(), layers), s -> new ArrayList<>())
          .add(e);
    List<Unit> units = new ArrayList<>();
    byStage.forEach(
        (stage, entries) -> {
          List<Entry> placed = new ArrayList<>();
          long at = 0, decay = 0;
          for (boolean matrices : new boolean[] {true, false})
            for (var e : entries)
              if ((e.getValue().length >= 2) == matrices) {
                Entry x = new Entry(e.getKey(), e.getValue(), at);
                placed.add(x);
                at += x.numel();
                if (matrices) decay = at;
              }
          long shard = (at + world - 1) / world;
          units.add(new Unit(unitName(stage, layers), stage, at, decay, shard, placed));
        });
    return new Zero3Layout(FORMAT, VERSION, world, units);
  }

  static String unitName(int stage, int layers) {
    if (stage < 0) return "model.embed_tokens";
    return stage == layers ? "head" : "model.layers." + stage;
  }

  /** The unit holding {@code name} and its entry, or null. */
  public Map.Entry<Unit, Entry> find(String name) {
    for (Unit u : units)
      for (Entry e : u.tensors()) if (e.name().equals(name)) return Map.entry(u, e);
    return null;
  }

  public void write(Path file) throws IOException {
    dev.hanlin.torch.io.AtomicFiles.writeSynced(file, JSON.writeValueAsString(this));
  }

  /** Reads {@code dir}'s layout; an error names the file and what is wrong. */
  public static Zero3Layout read(Path dir) throws IOException {
    Path f = dir.resolve(FILE);
    Zero3Layout l;
    try {
      l = JSON.readValue(f.toFile(), Zero3Layout.class);
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      throw new IOException(f + ": not a ZeRO-3 layout: " + e.getOriginalMessage(), e);
    }
    if (l == null || !FORMAT.equals(l.format()) || l.version() != VERSION || l.world() < 1)
      throw new IOException(
          f + ": expected format " + FORMAT + " version " + VERSION + " with world >= 1");
    return l;
  }

  public static boolean isIn(Path dir) {
    return Files.exists(dir.resolve(FILE));
  }

  /**
   * Whole tensors from the rank files of the ZeRO-3 checkpoint {@code dir} with this layout: of the
   * weights ({@code optimizer} false; keys are weight names, each loaded in {@code dtype} onto
   * {@code device}), or of the optimizer state (keys {@code <kind>.<weight name>}, float32 on the
   * host), each assembled from the ranks' slices. Retained, for the caller to release.
   */
  public Map<String, Tensor> assemble(
      Path dir, boolean optimizer, Collection<String> keys, DType dtype, Device device)
      throws IOException {
    List<SafetensorsFile> files = new ArrayList<>();
    Map<String, Tensor> out = new LinkedHashMap<>();
    try {
      for (int r = 0; r < world; r++) {
        Path f =
            dir.resolve(
                optimizer
                    ? dev.hanlin.train.Checkpoints.optimizerShard(r, world)
                    : modelFile(r, world));
        if (!Files.exists(f))
          throw new IOException(
              "checkpoint " + dir + " lacks " + f.getFileName() + " (rank " + r + "'s shards)");
        files.add(SafetensorsFile.open(f));
      }
      for (String key : keys) {
        int dot = optimizer ? key.indexOf('.') : -1;
        String kind = key.substring(0, dot + 1), name = key.substring(dot + 1);
        var found = find(name);
        if (found == null)
          throw new IOException(
              "checkpoint " + dir + ": " + name + " is in none of its units (" + FILE + ")");
        Unit u = found.getKey();
        Entry e = found.getValue();
        try (Scope s = Scope.open()) {
          if (kind.equals("step.")) { // one count per unit
            out.put(key, files.getFirst().load(kind + u.name()).retain());
            continue;
          }
          Tensor t = Torch.empty(DType.F32, Device.CPU, e.numel());
          for (long at = e.offset(), end = e.offset() + e.numel(); at < end; ) {
            int r = (int) (at / u.shard());
            long from = at - r * u.shard(), n = Math.min(u.shard() - from, end - at);
            t.narrow(0, at - e.offset(), n)
                .copy_(files.get(r).view(kind + u.name()).narrow(0, from, n));
            at += n;
          }
          out.put(key, t.view(e.shape()).to(device, optimizer ? DType.F32 : dtype, false).retain());
        }
      }
      return out;
    } catch (IOException | RuntimeException ex) {
      out.values().forEach(Tensor::release);
      throw ex;
    } finally {
      files.forEach(SafetensorsFile::close);
    }
  }

  /** Rank {@code rank}'s model shards in a checkpoint of {@code world} ranks. */
  public static String modelFile(int rank, int world) {
    return "model-rank-" + rank + "-of-" + world + ".safetensors";
  }
}
