package dev.hanlin.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.model.GenerationOptions;
import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.TextGeneration;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * A small random Llama (hidden 64, 2 layers, GQA) with the real Llama 2 tokenizer, saved as an HF
 * folder, and the reference a server's answer is checked against: {@link TextGeneration#generate}
 * on the same prompt alone, decoded as the server decodes.
 */
final class TinyModel {
  final Path dir;
  final LlamaModel model;
  final Tokenizer tok;

  private TinyModel(Path dir, LlamaModel model, Tokenizer tok) {
    this.dir = dir;
    this.model = model;
    this.tok = tok;
  }

  static Path testData(String name) {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      Path d = p.resolve("test-data").resolve(name);
      if (Files.exists(d)) return d;
    }
    throw new IllegalStateException("test-data/" + name + " not found (run test-data/*/setup.sh)");
  }

  /** Writes the model folder into {@code dir} and loads it back. */
  static TinyModel create(Path dir, int maxPositions) throws IOException {
    String json =
        """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000,
         "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": %d,
         "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "initializer_range": 0.5,
         "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false}
        """
            .formatted(maxPositions);
    LlamaConfig c = LlamaConfig.fromJson(new ObjectMapper().readTree(json));
    // a wide initializer gives peaked logits, so greedy choices are far from ties
    HfCheckpoint.save(LlamaModel.init(c, 7, DType.F32, Device.CPU), dir, 1L << 40);
    Files.copy(testData("assets/tokenizer/tokenizer.model"), dir.resolve("tokenizer.model"));
    return new TinyModel(dir, HfCheckpoint.load(dir, DType.F32, Device.CPU), Tokenizer.load(dir));
  }

  /** The text generated alone for {@code prompt}, as the server would stream it, and its count. */
  Solo solo(int[] prompt, GenerationOptions o) {
    int[] all = TextGeneration.generate(model, prompt, o);
    int[] out = Arrays.copyOfRange(all, prompt.length, all.length);
    boolean eos = out.length > 0 && o.eosTokenIds().contains(out[out.length - 1]);
    TextStream ts = new TextStream(tok, List.of());
    StringBuilder sb = new StringBuilder();
    List<String> upTo = new java.util.ArrayList<>(); // the text after each token
    for (int i = 0; i < out.length - (eos ? 1 : 0); i++)
      upTo.add(sb.append(ts.add(out[i])).toString());
    sb.append(ts.finish());
    return new Solo(sb.toString(), out.length, eos ? "stop" : "length", out, upTo);
  }

  /**
   * After {@code ids}, how far the model's best next-token logit is above its second best: how near
   * greedy decoding is to a tie there (float32, the whole sequence in one forward).
   */
  double margin(int[] ids) {
    try (dev.hanlin.torch.Scope s = dev.hanlin.torch.Scope.open();
        dev.hanlin.torch.Grad.Guard g = dev.hanlin.torch.Grad.noGrad()) {
      long[] l = Arrays.stream(ids).asLongStream().toArray();
      float[] logits =
          model
              .forward(dev.hanlin.torch.Torch.fromLongs(l, 1, l.length), null)
              .select(1, l.length - 1)
              .reshape(-1)
              .toFloatArray();
      float first = Float.NEGATIVE_INFINITY, second = Float.NEGATIVE_INFINITY;
      for (float v : logits)
        if (v > first) {
          second = first;
          first = v;
        } else if (v > second) second = v;
      return first - second;
    }
  }

  /**
   * A solo answer: its text, token count and finish reason; {@code ids} the generated tokens and
   * {@code upTo} the text after each.
   */
  record Solo(String text, int tokens, String finishReason, int[] ids, List<String> upTo) {
    /** The first generated token after which {@code other} no longer begins with this text. */
    int firstDifference(String other) {
      for (int k = 0; k < upTo.size(); k++) if (!other.startsWith(upTo.get(k))) return k;
      return upTo.size();
    }

    /** {@code prompt} followed by the first {@code k} generated tokens. */
    int[] prefix(int[] prompt, int k) {
      int[] p = Arrays.copyOf(prompt, prompt.length + k);
      System.arraycopy(ids, 0, p, prompt.length, k);
      return p;
    }
  }
}
