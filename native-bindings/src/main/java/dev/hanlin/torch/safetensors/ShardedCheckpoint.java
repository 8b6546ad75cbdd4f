package dev.hanlin.torch.safetensors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A Hugging Face model folder's weights: either one {@code model.safetensors} or shards {@code
 * model-00001-of-00003.safetensors} listed by {@code model.safetensors.index.json} ({@code
 * {"metadata": {"total_size": N}, "weight_map": {name: file}}}). Like transformers, a single {@code
 * model.safetensors} wins over an index when both exist.
 *
 * <p>Opening checks that the index and the shards agree exactly: every listed file exists and holds
 * the tensors listed for it, and every tensor in a shard is listed for that shard.
 */
public final class ShardedCheckpoint implements AutoCloseable {
  public static final String SINGLE_FILE = "model.safetensors";
  public static final String INDEX_FILE = "model.safetensors.index.json";
  private static final Pattern SHARD_NAME = Pattern.compile("model-\\d{5}-of-\\d{5}\\.safetensors");

  private final Path dir;
  private final List<SafetensorsFile> files;
  private final Map<String, SafetensorsFile> byTensor; // sorted by name

  private ShardedCheckpoint(
      Path dir, List<SafetensorsFile> files, Map<String, SafetensorsFile> byTensor) {
    this.dir = dir;
    this.files = files;
    this.byTensor = byTensor;
  }

  /** Opens the weights in {@code dir}; see the class comment for the accepted layouts. */
  public static ShardedCheckpoint open(Path dir) throws IOException {
    Path single = dir.resolve(SINGLE_FILE);
    Path index = dir.resolve(INDEX_FILE);
    if (Files.isRegularFile(single)) {
      SafetensorsFile f = SafetensorsFile.open(single);
      Map<String, SafetensorsFile> by = new TreeMap<>();
      for (String n : f.names()) by.put(n, f);
      return new ShardedCheckpoint(dir, List.of(f), Collections.unmodifiableMap(by));
    }
    if (!Files.isRegularFile(index)) {
      throw new SafetensorsException(dir, "holds neither " + SINGLE_FILE + " nor " + INDEX_FILE);
    }
    Map<String, String> weightMap = readIndex(index);
    Map<String, Set<String>> byFile = new TreeMap<>();
    weightMap.forEach((t, f) -> byFile.computeIfAbsent(f, k -> new TreeSet<>()).add(t));
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      Map<String, SafetensorsFile> by = new TreeMap<>();
      for (Map.Entry<String, Set<String>> e : byFile.entrySet()) {
        Path shard = dir.resolve(e.getKey());
        if (!Files.isRegularFile(shard)) {
          throw new SafetensorsException(
              index,
              "lists shard file "
                  + shard
                  + " (for tensor '"
                  + e.getValue().iterator().next()
                  + "' and "
                  + (e.getValue().size() - 1)
                  + " more) but it does not exist");
        }
        SafetensorsFile f = SafetensorsFile.open(shard);
        opened.add(f);
        for (String t : e.getValue()) {
          if (!f.contains(t)) {
            throw new SafetensorsException(
                shard,
                "index " + index + " lists tensor '" + t + "' in this shard, but it is absent");
          }
          by.put(t, f);
        }
        for (String t : f.names()) {
          if (!e.getValue().contains(t)) {
            String listed = weightMap.get(t);
            throw new SafetensorsException(
                shard,
                "holds tensor '"
                    + t
                    + "' that index "
                    + index
                    + (listed == null ? " does not list" : " assigns to " + listed));
          }
        }
      }
      return new ShardedCheckpoint(dir, List.copyOf(opened), Collections.unmodifiableMap(by));
    } catch (IOException | RuntimeException ex) {
      for (SafetensorsFile f : opened) f.close();
      throw ex;
    }
  }

  private static Map<String, String> readIndex(Path index) throws IOException {
    JsonNode root;
    try {
      root = SafetensorsFile.JSON.readTree(Files.readAllBytes(index));
    } catch (JsonProcessingException e) {
      throw new SafetensorsException(index, "is not valid JSON: " + e.getOriginalMessage(), e);
    }
    JsonNode wm = root == null ? null : root.get("weight_map");
    if (wm == null || !wm.isObject()) {
      throw new SafetensorsException(index, "has no 'weight_map' object");
    }
    Map<String, String> out = new TreeMap<>();
    for (Map.Entry<String, JsonNode> e : wm.properties()) {
      JsonNode v = e.getValue();
      String file = v.isTextual() ? v.textValue() : null;
      // Only plain file names: an index must not reach outside its folder.
      if (file == null
          || file.isEmpty()
          || file.contains("/")
          || file.contains("\\")
          || file.equals(".")
          || file.equals("..")) {
        throw new SafetensorsException(
            index, "weight_map entry for tensor '" + e.getKey() + "' is not a file name: " + v);
      }
      out.put(e.getKey(), file);
    }
    return out;
  }

  /** The folder this checkpoint was opened from. */
  public Path dir() {
    return dir;
  }

  /** Every tensor name, sorted. */
  public Set<String> names() {
    return byTensor.keySet();
  }

  /** The open files, one or one per shard. */
  public List<SafetensorsFile> files() {
    return files;
  }

  /** The file holding one tensor. */
  public SafetensorsFile fileOf(String name) throws SafetensorsException {
    SafetensorsFile f = byTensor.get(name);
    if (f == null) throw new SafetensorsException(dir, "no tensor '" + name + "' in checkpoint");
    return f;
  }

  public TensorInfo info(String name) throws SafetensorsException {
    return fileOf(name).info(name);
  }

  /** Zero-copy view, valid while this checkpoint is open (see {@link SafetensorsFile#view}). */
  public Tensor view(String name) throws SafetensorsException {
    return fileOf(name).view(name);
  }

  /** Owning CPU copy. */
  public Tensor load(String name) throws SafetensorsException {
    return fileOf(name).load(name);
  }

  /** Owning copy converted to {@code dtype} on {@code device}. */
  public Tensor load(String name, DType dtype, Device device) throws SafetensorsException {
    return fileOf(name).load(name, dtype, device);
  }

  /** Owning CPU copies of every tensor, sorted by name. */
  public Map<String, Tensor> loadAll() throws SafetensorsException {
    Map<String, Tensor> out = new LinkedHashMap<>();
    for (String n : byTensor.keySet()) out.put(n, load(n));
    return out;
  }

  @Override
  public void close() {
    for (SafetensorsFile f : files) f.close();
  }

  /**
   * Saves {@code tensors} into {@code dir} as HF does: one {@code model.safetensors} when the data
   * fits in {@code maxShardBytes}, else shards filled in map order (a tensor larger than the limit
   * gets a shard of its own) plus the index, written last. Each file is written atomically; stale
   * weight files of the other layout, and old shards not in the new set, are removed afterwards.
   */
  public static void save(Path dir, Map<String, Tensor> tensors, long maxShardBytes)
      throws IOException {
    if (maxShardBytes <= 0) {
      throw new IllegalArgumentException("maxShardBytes must be positive: " + maxShardBytes);
    }
    Files.createDirectories(dir);
    List<Map<String, Tensor>> shards = new ArrayList<>();
    Map<String, Tensor> current = new LinkedHashMap<>();
    long currentBytes = 0;
    long total = 0;
    for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
      long bytes = e.getValue().byteSize();
      if (!current.isEmpty() && currentBytes + bytes > maxShardBytes) {
        shards.add(current);
        current = new LinkedHashMap<>();
        currentBytes = 0;
      }
      current.put(e.getKey(), e.getValue());
      currentBytes += bytes;
      total += bytes;
    }
    shards.add(current);

    if (shards.size() == 1) {
      SafetensorsWriter.write(dir.resolve(SINGLE_FILE), shards.get(0));
      Files.deleteIfExists(dir.resolve(INDEX_FILE));
      removeStaleShards(dir, Set.of());
      return;
    }
    int n = shards.size();
    Map<String, String> weightMap = new TreeMap<>();
    Set<String> written = new TreeSet<>();
    for (int i = 0; i < n; i++) {
      String file = String.format("model-%05d-of-%05d.safetensors", i + 1, n);
      SafetensorsWriter.write(dir.resolve(file), shards.get(i));
      for (String t : shards.get(i).keySet()) weightMap.put(t, file);
      written.add(file);
    }
    Map<String, Object> index = new LinkedHashMap<>();
    index.put("metadata", Map.of("total_size", total));
    index.put("weight_map", weightMap);
    byte[] json = SafetensorsFile.JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(index);
    SafetensorsWriter.writeAtomically(
        dir.resolve(INDEX_FILE), ch -> SafetensorsWriter.writeFully(ch, ByteBuffer.wrap(json)));
    Files.deleteIfExists(dir.resolve(SINGLE_FILE));
    removeStaleShards(dir, written);
  }

  /**
   * Writes into {@code dir} the files {@link #save} would write for tensors of the names, dtypes
   * and shapes of {@code planned} (the same split, the same bytes), the tensors coming one at a
   * time in that order through {@link Streaming#put}: only the file being filled is open, and each
   * is committed as its last tensor arrives; {@link Streaming#finish} then writes the index.
   */
  public static Streaming stream(
      Path dir, List<SafetensorsWriter.Planned> planned, long maxShardBytes) throws IOException {
    if (maxShardBytes <= 0)
      throw new IllegalArgumentException("maxShardBytes must be positive: " + maxShardBytes);
    Files.createDirectories(dir);
    List<List<SafetensorsWriter.Planned>> shards = new ArrayList<>();
    List<SafetensorsWriter.Planned> current = new ArrayList<>();
    long currentBytes = 0, total = 0;
    for (SafetensorsWriter.Planned p : planned) {
      if (!current.isEmpty() && currentBytes + p.byteSize() > maxShardBytes) {
        shards.add(current);
        current = new ArrayList<>();
        currentBytes = 0;
      }
      current.add(p);
      currentBytes += p.byteSize();
      total += p.byteSize();
    }
    shards.add(current);
    return new Streaming(dir, shards, total);
  }

  /** The files of a model being written one tensor at a time; see {@link #stream}. */
  public static final class Streaming implements AutoCloseable {
    private final Path dir;
    private final List<List<SafetensorsWriter.Planned>> shards;
    private final long total;
    private int shard, inShard;
    private SafetensorsWriter.Streaming open;

    private Streaming(Path dir, List<List<SafetensorsWriter.Planned>> shards, long total) {
      this.dir = dir;
      this.shards = shards;
      this.total = total;
    }

    private String file(int i) {
      return shards.size() == 1
          ? SINGLE_FILE
          : String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
    }

    /** The next planned tensor, {@code name}. */
    public void put(String name, Tensor t) throws IOException {
      List<SafetensorsWriter.Planned> s = shards.get(shard);
      if (!s.get(inShard).name().equals(name))
        throw new SafetensorsException(
            dir.resolve(file(shard)),
            "expected '" + s.get(inShard).name() + "', got '" + name + "'");
      if (open == null) open = SafetensorsWriter.open(dir.resolve(file(shard)), s);
      open.put(name, t);
      if (++inShard == s.size()) {
        open.commit();
        open = null;
        shard++;
        inShard = 0;
      }
    }

    /** After the last tensor: the index (for several files), and stale weight files removed. */
    public void finish() throws IOException {
      if (shard != shards.size())
        throw new SafetensorsException(dir.resolve(file(shard)), "not every tensor was put");
      if (shards.size() == 1) {
        Files.deleteIfExists(dir.resolve(INDEX_FILE));
        removeStaleShards(dir, Set.of());
        return;
      }
      Map<String, String> weightMap = new TreeMap<>();
      Set<String> written = new TreeSet<>();
      for (int i = 0; i < shards.size(); i++) {
        for (SafetensorsWriter.Planned p : shards.get(i)) weightMap.put(p.name(), file(i));
        written.add(file(i));
      }
      Map<String, Object> index = new LinkedHashMap<>();
      index.put("metadata", Map.of("total_size", total));
      index.put("weight_map", weightMap);
      byte[] json = SafetensorsFile.JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(index);
      SafetensorsWriter.writeAtomically(
          dir.resolve(INDEX_FILE), ch -> SafetensorsWriter.writeFully(ch, ByteBuffer.wrap(json)));
      Files.deleteIfExists(dir.resolve(SINGLE_FILE));
      removeStaleShards(dir, written);
    }

    @Override
    public void close() throws IOException {
      if (open != null) open.close();
    }
  }

  private static void removeStaleShards(Path dir, Set<String> keep) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.toList()) {
        String f = p.getFileName().toString();
        if (SHARD_NAME.matcher(f).matches() && !keep.contains(f)) Files.deleteIfExists(p);
      }
    }
  }

  @Override
  public String toString() {
    return "ShardedCheckpoint["
        + dir
        + ", "
        + files.size()
        + " files, "
        + byTensor.size()
        + " tensors]";
  }
}
