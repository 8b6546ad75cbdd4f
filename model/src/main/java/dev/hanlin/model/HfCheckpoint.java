package dev.hanlin.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hanlin.config.ConfigException;
import dev.hanlin.model.quant.QuantizedWeight;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.TorchPickle;
import dev.hanlin.torch.io.AtomicFiles;
import dev.hanlin.torch.safetensors.ShardedCheckpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Hugging Face model folders in and out: {@code config.json}, {@code generation_config.json} and
 * the weights as safetensors (one file, or shards with an index). A PyTorch {@code
 * pytorch_model.bin} is read when no safetensors exist.
 */
public final class HfCheckpoint {
  /** transformers' default shard size for {@code save_pretrained}. */
  public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private HfCheckpoint() {}

  /** Loads a model folder, casting weights to {@code dtype} on {@code device}. */
  public static LlamaModel load(Path dir, DType dtype, Device device) throws IOException {
    return load(dir, dtype, device, 0);
  }

  /**
   * Loads a model folder as a frozen QLoRA base: the linear weights of every block quantized to
   * {@code loadInBits} (4: NF4 with double quantization, 8: blockwise int8; 0: none, as {@link
   * #load(Path, DType, Device)}) on {@code device} as each is read, so the full-precision model is
   * never in memory at once (one tensor at a time from safetensors; a {@code pytorch_model.bin}
   * file is unpickled whole, one shard at a time); embeddings, norms, biases and the head in {@code
   * dtype}, which the quantized layers compute in. Quantized from the values as stored (read as
   * fp32, which is exact for bf16 and fp16 checkpoints).
   */
  public static LlamaModel load(Path dir, DType dtype, Device device, int loadInBits)
      throws IOException {
    if (loadInBits != 0 && loadInBits != 4 && loadInBits != 8)
      throw new ConfigException("load_in_bits must be 4 or 8, got " + loadInBits);
    if (!Files.isDirectory(dir))
      throw new ConfigException(dir + ": not a model folder (expected config.json and weights)");
    LlamaConfig config = LlamaConfig.read(dir.resolve("config.json"));
    Map<String, Tensor> weights = new LinkedHashMap<>();
    Map<String, QuantizedWeight> quantized = new LinkedHashMap<>();
    var expected = LlamaModel.expectedShapes(config).keySet();
    // Tensors the config has no place for (e.g. layer 1 under num_hidden_layers: 1) are an error,
    // not dropped: a model that silently loses layers still generates and evaluates.
    Map<String, String> unexpected = new java.util.TreeMap<>(); // name -> file
    boolean hasSafetensors =
        Files.exists(dir.resolve(ShardedCheckpoint.SINGLE_FILE))
            || Files.exists(dir.resolve(ShardedCheckpoint.INDEX_FILE));
    Path bin = dir.resolve("pytorch_model.bin");
    if (hasSafetensors) {
      try (ShardedCheckpoint ck = ShardedCheckpoint.open(dir)) {
        for (String name : ck.names()) {
          if (skippable(name, config)) continue;
          if (!expected.contains(name)) {
            unexpected.put(name, ck.fileOf(name).path().getFileName().toString());
            continue;
          }
          try (Scope s = Scope.open()) {
            if (loadInBits != 0 && quantizable(name))
              quantized.put(
                  name, quantize(ck.load(name, DType.F32, device), loadInBits, dir, name));
            else weights.put(name, ck.load(name, dtype, device).retain());
          }
        }
      }
    } else if (Files.exists(bin) || Files.exists(dir.resolve(BIN_INDEX))) {
      for (Path file : binFiles(dir)) {
        for (var e : TorchPickle.loadStateDict(file).entrySet()) {
          if (skippable(e.getKey(), config)) {
            e.getValue().release();
            continue;
          }
          if (!expected.contains(e.getKey())) {
            unexpected.put(e.getKey(), file.getFileName().toString());
            e.getValue().release();
            continue;
          }
          try (Scope s = Scope.open()) {
            if (loadInBits != 0 && quantizable(e.getKey()))
              quantized.put(
                  e.getKey(),
                  quantize(
                      e.getValue().to(device, DType.F32, false), loadInBits, file, e.getKey()));
            else weights.put(e.getKey(), e.getValue().to(device, dtype, false).retain());
          }
          e.getValue().release();
        }
      }
    } else {
      throw new ConfigException(
          dir
              + ": no weights (model.safetensors, model.safetensors.index.json or pytorch_model.bin)");
    }
    if (!unexpected.isEmpty()) {
      weights.values().forEach(Tensor::release);
      quantized.values().forEach(QuantizedWeight::close);
      throw new ConfigException(unexpectedMessage(dir, config, unexpected));
    }
    try {
      return quantized.isEmpty()
          ? LlamaModel.fromWeights(config.withDtype(dtype), weights)
          : LlamaModel.fromWeights(config.withDtype(dtype), weights, quantized);
    } catch (ConfigException e) {
      throw new ConfigException(dir + ": " + e.getMessage(), e);
    }
  }

  /**
   * The weights load_in_bits quantizes: every block's linear layers, as bitsandbytes replaces each
   * {@code nn.Linear} but the head (embeddings and norms are not linear layers).
   */
  static boolean quantizable(String name) {
    return name.startsWith("model.layers.") && name.endsWith("_proj.weight");
  }

  private static QuantizedWeight quantize(Tensor w, int bits, Path where, String name) {
    try {
      return QuantizedWeight.quantize(w, bits);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(where + ": " + name + ": " + e.getMessage(), e);
    }
  }

  /** Names the first few unexpected tensors with their files, and what config.json says. */
  private static String unexpectedMessage(
      Path dir, LlamaConfig config, Map<String, String> unexpected) {
    StringBuilder b = new StringBuilder();
    int shown = 0;
    for (var e : unexpected.entrySet()) {
      if (shown++ == 6) {
        b.append(" and ").append(unexpected.size() - 6).append(" more");
        break;
      }
      b.append(shown == 1 ? "" : ", ").append(e.getKey()).append(" (").append(e.getValue());
      b.append(')');
    }
    return dir
        + ": "
        + unexpected.size()
        + " tensor(s) that config.json (num_hidden_layers "
        + config.numHiddenLayers()
        + ", vocab_size "
        + config.vocabSize()
        + ") has no place for: "
        + b
        + "; the config does not describe these weights";
  }

  static final String BIN_INDEX = "pytorch_model.bin.index.json";

  /** {@code pytorch_model.bin}, or the shards its index lists (e.g. Llama2-Chinese's releases). */
  private static java.util.List<Path> binFiles(Path dir) throws IOException {
    Path index = dir.resolve(BIN_INDEX);
    if (!Files.exists(index)) return java.util.List.of(dir.resolve("pytorch_model.bin"));
    var map = JSON.readTree(index.toFile()).path("weight_map");
    if (!map.isObject()) throw new ConfigException(index + ": no weight_map object");
    java.util.TreeSet<String> files = new java.util.TreeSet<>();
    map.properties().forEach(e -> files.add(e.getValue().asText()));
    java.util.List<Path> out = new java.util.ArrayList<>();
    for (String f : files) {
      Path p = dir.resolve(f).normalize();
      if (!p.getParent().equals(dir.normalize()) || !Files.exists(p))
        throw new ConfigException(index + ": lists " + f + ", which is not a file in " + dir);
      out.add(p);
    }
    return out;
  }

  /** Buffers and duplicates that HF checkpoints may hold and the model does not need. */
  private static boolean skippable(String name, LlamaConfig c) {
    return name.endsWith("rotary_emb.inv_freq")
        || (c.tieWordEmbeddings() && name.equals("lm_head.weight"));
  }

  /** Writes an HF folder that {@code AutoModelForCausalLM.from_pretrained} loads as is. */
  public static void save(LlamaModel model, Path dir, long maxShardBytes) throws IOException {
    if (!model.quantizedWeights().isEmpty())
      throw new ConfigException(
          dir
              + ": a model with a quantized base (load_in_bits) is not saved as an HF folder; its"
              + " result is the LoRA adapter, merged into the full-precision base with merge-lora");
    Files.createDirectories(dir);
    ShardedCheckpoint.save(dir, model.weights(), maxShardBytes);
    LlamaConfig c = model.config().withDtype(model.dtype());
    writeAtomically(dir.resolve("generation_config.json"), generationConfig(c));
    writeAtomically(dir.resolve("config.json"), c.toJsonString());
  }

  /**
   * The folder {@link #save} writes for a model of config {@code c} with weights in {@code dtype},
   * its weights coming one at a time through {@link Streamed#put}, in the order of {@link
   * LlamaModel#expectedShapes}: the same files, and no more than one safetensors file open (a model
   * gathered from shards piece by piece never has to be whole in memory).
   */
  public static Streamed stream(LlamaConfig c, DType dtype, Path dir, long maxShardBytes)
      throws IOException {
    java.util.List<dev.hanlin.torch.safetensors.SafetensorsWriter.Planned> planned =
        new java.util.ArrayList<>();
    LlamaModel.expectedShapes(c)
        .forEach(
            (k, v) ->
                planned.add(
                    new dev.hanlin.torch.safetensors.SafetensorsWriter.Planned(k, dtype, v)));
    return new Streamed(
        ShardedCheckpoint.stream(dir, planned, maxShardBytes), c.withDtype(dtype), dir);
  }

  /** An HF folder being written; see {@link #stream}. */
  public static final class Streamed implements AutoCloseable {
    private final ShardedCheckpoint.Streaming files;
    private final LlamaConfig config;
    private final Path dir;

    private Streamed(ShardedCheckpoint.Streaming files, LlamaConfig config, Path dir) {
      this.files = files;
      this.config = config;
      this.dir = dir;
    }

    /** The next weight, {@code name}, in the planned dtype and shape. */
    public void put(String name, Tensor t) throws IOException {
      files.put(name, t);
    }

    /** After the last weight: the index and the configs. */
    public void finish() throws IOException {
      files.finish();
      writeAtomically(dir.resolve("generation_config.json"), generationConfig(config));
      writeAtomically(dir.resolve("config.json"), config.toJsonString());
    }

    @Override
    public void close() throws IOException {
      files.close();
    }
  }

  private static String generationConfig(LlamaConfig c) throws IOException {
    ObjectNode g = JSON.createObjectNode();
    g.put("bos_token_id", c.bosTokenId());
    if (c.eosTokenIds().size() == 1) g.put("eos_token_id", c.eosTokenIds().getFirst());
    else c.eosTokenIds().forEach(g.withArray("eos_token_id")::add);
    if (c.padTokenId() != null) g.put("pad_token_id", c.padTokenId());
    return JSON.writeValueAsString(g) + "\n";
  }

  /** Temp file in the same folder, fsync, rename: readers never see half a file. */
  static void writeAtomically(Path target, String text) throws IOException {
    try {
      AtomicFiles.writeString(target, text);
    } catch (IOException e) {
      throw new IOException(target + ": cannot write: " + e.getMessage(), e);
    }
  }
}
