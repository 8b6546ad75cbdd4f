package dev.hanlin.model;

import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Autoregressive decoding with a KV cache: one forward over the prompt, then one token at a time.
 * Token choice runs in Java on the last position's float32 logits, with HF's order of processors
 * (repetition penalty, temperature, top-k, top-p) and a seeded generator, so a seed gives the same
 * text on any device.
 */
public final class TextGeneration {
  private TextGeneration() {}

  /** Prompt plus generated ids; stops after {@code maxNewTokens} or at an end-of-sequence id. */
  public static int[] generate(LlamaModel model, int[] prompt, GenerationOptions o) {
    if (prompt.length == 0) throw new IllegalArgumentException("the prompt has no tokens");
    int total = prompt.length + o.maxNewTokens();
    if (total > model.config().maxPositionEmbeddings()
        && !(model.config().ropeScaling() instanceof RopeScaling.Dynamic))
      System.err.printf(
          "warning: %d tokens exceed max_position_embeddings %d%n",
          total, model.config().maxPositionEmbeddings());
    int[] out = Arrays.copyOf(prompt, total);
    int n = prompt.length;
    SplittableRandom rng = new SplittableRandom(o.seed());
    KvCache cache = new KvCache(model.config(), 1, total, model.dtype(), model.device());
    try (Grad.Guard g = Grad.inference()) {
      float[] logits = lastLogits(model, Arrays.copyOf(prompt, prompt.length), cache);
      while (n < total) {
        int next = pick(logits, out, n, o, rng);
        out[n++] = next;
        if (o.eosTokenIds().contains(next) || n == total) break;
        logits = lastLogits(model, new int[] {next}, cache);
      }
    } finally {
      cache.free();
    }
    return Arrays.copyOf(out, n);
  }

  private static float[] lastLogits(LlamaModel model, int[] ids, KvCache cache) {
    try (Scope s = Scope.open()) {
      long[] l = new long[ids.length];
      for (int i = 0; i < ids.length; i++) l[i] = ids[i];
      Tensor x = Torch.fromLongs(l, 1, ids.length).to(model.device());
      Tensor logits = model.forward(x, cache); // (1, T, V)
      return logits.select(1, ids.length - 1).toFloatArray();
    }
  }

  /** Chooses the next token from {@code logits}, given the {@code n} ids so far. */
  public static int pick(
      float[] logits, int[] ids, int n, GenerationOptions o, SplittableRandom rng) {
    float[] z = logits.clone();
    if (o.repetitionPenalty() != 1) {
      boolean[] seen = new boolean[z.length];
      for (int i = 0; i < n; i++) seen[ids[i]] = true;
      for (int v = 0; v < z.length; v++) {
        if (seen[v])
          z[v] = (float) (z[v] < 0 ? z[v] * o.repetitionPenalty() : z[v] / o.repetitionPenalty());
      }
    }
    if (o.greedy()) return argmax(z);
    for (int v = 0; v < z.length; v++) z[v] = (float) (z[v] / o.temperature());
    Integer[] order = new Integer[z.length];
    for (int i = 0; i < order.length; i++) order[i] = i;
    Arrays.sort(order, (a, b) -> Float.compare(z[b], z[a])); // stable: ties keep id order
    int keep = o.topK() > 0 ? Math.min(o.topK(), z.length) : z.length;
    double max = z[order[0]];
    double[] p = new double[keep];
    double sum = 0;
    for (int i = 0; i < keep; i++) sum += p[i] = Math.exp(z[order[i]] - max);
    if (o.topP() < 1) {
      // keep the smallest prefix whose mass reaches top_p (at least one token)
      double acc = 0;
      int cut = keep;
      for (int i = 0; i < keep; i++) {
        acc += p[i] / sum;
        if (acc >= o.topP()) {
          cut = i + 1;
          break;
        }
      }
      keep = cut;
      sum = 0;
      for (int i = 0; i < keep; i++) sum += p[i];
    }
    double r = rng.nextDouble() * sum;
    for (int i = 0; i < keep; i++) {
      r -= p[i];
      if (r < 0) return order[i];
    }
    return order[keep - 1];
  }

  static int argmax(float[] z) {
    int best = 0;
    for (int i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
    return best;
  }
}
