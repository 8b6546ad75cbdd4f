package dev.hanlin.train.source;

import dev.hanlin.config.ConfigException;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.safetensors.ShardedCheckpoint;
import dev.hanlin.train.Checkpoints;
import dev.hanlin.train.FiniteWeights;
import dev.hanlin.train.PretrainConfig;
import dev.hanlin.train.parallel.UnitWeights;
import dev.hanlin.train.precision.MasterWeights;
import dev.hanlin.train.precision.Precision;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The model of a ZeRO-3 run, built so that no rank ever holds it whole (a 13B model is 52 GB of
 * float32): its weights are placeholders on the device, of the right shapes and compute dtype but
 * one element of memory each, which ZeRO-3 points at gathered values as it goes; their float32
 * values come one unit at a time ({@link UnitWeights}), drawn as {@link LlamaModel#init} draws them
 * (the same values), or read tensor by tensor from the model folder's safetensors, or taken from
 * the checkpoint being resumed (which the run loads into host memory for this). ZeRO-3 slices each
 * unit on the device and empties it before the next comes.
 */
public final class ShardedModel {
  private ShardedModel() {}

  /** The placeholder model and where its values come from (closed once ZeRO-3 has them). */
  public record Built(LlamaModel model, UnitWeights weights) {}

  /**
   * The model of {@code cfg} for ZeRO-3 on {@code device}, or null where it must be built whole
   * first ({@link ModelBuilder}): LoRA, a vocabulary to grow to the tokenizer's, a model folder of
   * {@code pytorch_model.bin} files. With master weights the model computes in bf16 and ZeRO-3's
   * float32 shards are the masters, so {@code precision} hands over none.
   */
  public static Built prepare(
      PretrainConfig cfg,
      Checkpoints.Loaded ck,
      Tokenizer tokenizer,
      Precision precision,
      Device device,
      PrintStream err)
      throws IOException {
    if (cfg.lora() != null) return null;
    ModelSource source = ModelSource.of(cfg, ck);
    LlamaConfig c = source.config();
    // a resumed checkpoint's vocabulary is the run's (ResumeCheck), and its weights are on the host
    if (!(source instanceof Resume) && tokenizer.vocabSize() > c.vocabSize()) return null;
    UnitWeights weights =
        switch (source) {
          case FreshInit f -> fresh(c, f.seed());
          case HfFolder h -> h.loadInBits() == 0 ? fromFolder(h, c) : null;
          case Resume r -> UnitWeights.of(r.ck().weights());
        };
    if (weights == null) return null;
    if (!(source instanceof FreshInit)) c = c.withDtype(DType.F32); // as their loads say
    boolean bf16 = precision instanceof MasterWeights;
    if (bf16) {
      c = c.withDtype(DType.BF16);
      err.println(
          "master_weights: the model computes in bf16, AdamW updates fp32 master weights"
              + " (ZeRO-3's shards)");
    }
    precision.handOverFp32(Map.of()); // the precision keeps no masters: the shards are
    return new Built(placeholders(c, device), weights);
  }

  /** A model of {@code c} on {@code device} whose weights are trainable {@link #placeholder}s. */
  static LlamaModel placeholders(LlamaConfig c, Device device) {
    Map<String, Tensor> w = new LinkedHashMap<>();
    for (var e : LlamaModel.expectedShapes(c).entrySet())
      w.put(e.getKey(), placeholder(c.dtype(), device, e.getValue()).requiresGrad(true));
    return LlamaModel.fromWeights(c, w);
  }

  /**
   * A tensor of {@code shape} whose every element is one element of memory (strides 0), retained:
   * the model's shapes are checked, and ZeRO-3 replaces its storage before any use.
   */
  static Tensor placeholder(DType dtype, Device device, long[] shape) {
    try (Scope s = Scope.open()) {
      Tensor one = Torch.empty(dtype, device, 1);
      one.raw().set_(one.raw(), 0, shape, new long[shape.length]);
      return one.retain();
    }
  }

  /**
   * {@link LlamaModel#init}'s values, drawn unit by unit from one generator in init's order (the
   * layout asks for the units in that order, each a run of consecutive names).
   */
  static UnitWeights fresh(LlamaConfig c, long seed) {
    Generator gen = Generator.cpu(seed);
    Iterator<Map.Entry<String, long[]>> order = LlamaModel.expectedShapes(c).entrySet().iterator();
    return names -> {
      Set<String> want = Set.copyOf(names);
      Map<String, Tensor> out = new LinkedHashMap<>();
      while (out.size() < want.size()) {
        var e = order.hasNext() ? order.next() : null;
        if (e == null || !want.contains(e.getKey()))
          throw new IllegalStateException(
              "ZeRO-3 asked for " + names + " out of init's order (at " + e + ")");
        out.put(e.getKey(), LlamaModel.initWeight(c, e.getKey(), e.getValue(), gen));
      }
      return out;
    };
  }

  /**
   * The model folder's safetensors read one tensor at a time as float32 on the host, after the
   * names are checked against config.json as {@code HfCheckpoint.load} checks them; each unit is
   * checked to be finite.
   */
  static UnitWeights fromFolder(HfFolder h, LlamaConfig c) throws IOException {
    Path dir = h.folder();
    h.require();
    if (!Files.exists(dir.resolve(ShardedCheckpoint.SINGLE_FILE))
        && !Files.exists(dir.resolve(ShardedCheckpoint.INDEX_FILE))) return null; // .bin files
    ShardedCheckpoint files = ShardedCheckpoint.open(dir);
    try {
      Set<String> expected = LlamaModel.expectedShapes(c).keySet();
      TreeSet<String> missing = new TreeSet<>(expected), unexpected = new TreeSet<>();
      missing.removeAll(files.names());
      for (String n : files.names())
        if (!expected.contains(n)
            && !n.endsWith("rotary_emb.inv_freq")
            && !(c.tieWordEmbeddings() && n.equals("lm_head.weight"))) unexpected.add(n);
      if (!missing.isEmpty() || !unexpected.isEmpty())
        throw new ConfigException(
            dir
                + ": the weights do not match config.json (num_hidden_layers "
                + c.numHiddenLayers()
                + "): missing "
                + first(missing)
                + ", unexpected "
                + first(unexpected));
      for (var e : LlamaModel.expectedShapes(c).entrySet()) {
        long[] got = files.info(e.getKey()).shape();
        if (!java.util.Arrays.equals(got, e.getValue()))
          throw new ConfigException(
              dir
                  + ": "
                  + e.getKey()
                  + " has shape "
                  + java.util.Arrays.toString(got)
                  + ", config.json implies "
                  + java.util.Arrays.toString(e.getValue()));
      }
    } catch (IOException | RuntimeException e) {
      files.close();
      throw e;
    }
    return new UnitWeights() {
      @Override
      public Map<String, Tensor> unit(List<String> names) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        try {
          for (String n : names) out.put(n, files.load(n, DType.F32, Device.CPU));
        } catch (IOException e) {
          throw new UncheckedIOException(dir + ": " + e.getMessage(), e);
        }
        FiniteWeights.require(out, "model folder " + dir);
        return out;
      }

      @Override
      public void close() {
        files.close();
      }
    };
  }

  private static String first(TreeSet<String> names) {
    if (names.isEmpty()) return "none";
    List<String> l = List.copyOf(names);
    return l.size() <= 6 ? l.toString() : l.subList(0, 6) + " and " + (l.size() - 6) + " more";
  }
}
