package dev.hanlin.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.config.ConfigException;
import dev.hanlin.tokenizer.BpeTokenizer;
import dev.hanlin.tokenizer.HfTokenizerJson;
import dev.hanlin.tokenizer.SentencePieceModel;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --mode resize-vocab}'s work: the bundled demo tokenizer (4,000 pieces) over a base made of
 * its first 2,130 pieces (control, bytes, ▁ and single Han characters; the rest are merges such as
 * 何处 = 何 + 处), on a tiny random model.
 */
class VocabResizeTest {
  static final int BASE = 2130;
  @TempDir Path tmp;

  static Path demoTokenizer() {
    return TestData.dir("sft").getParent().getParent().resolve("configs/demo/tokenizer.model");
  }

  /** A base model folder: tiny random weights and the truncated demo tokenizer. */
  Path baseFolder(boolean tied) throws Exception {
    SentencePieceModel full = SentencePieceModel.read(demoTokenizer());
    SentencePieceModel base =
        SentencePieceModel.llamaStyle(full.pieces().subList(0, BASE), 0, 1, 2, true, true);
    var n =
        new ObjectMapper()
            .readTree(
                """
                {"vocab_size": %d, "hidden_size": 32, "intermediate_size": 64,
                 "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "max_position_embeddings": 64, "tie_word_embeddings": %s,
                 "bos_token_id": 1, "eos_token_id": 2}
                """
                    .formatted(BASE, tied));
    LlamaModel m = LlamaModel.init(LlamaConfig.fromJson(n), 7, DType.F32, Device.CPU);
    Path dir = tmp.resolve(tied ? "base-tied" : "base");
    HfCheckpoint.save(m, dir, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES);
    HfTokenizerJson.writeFolder(base, dir);
    return dir;
  }

  static float[] rows(LlamaModel m, String name) {
    return m.weights().get(name).toFloatArray();
  }

  @Test
  void newRowsAreTheMeanOfTheirBasePiecesAndOldRowsAreUnchanged() throws Exception {
    for (boolean tied : new boolean[] {false, true}) {
      Path base = baseFolder(tied), out = tmp.resolve(tied ? "out-tied" : "out");
      VocabResize.Result r = VocabResize.resizeFolder(base, demoTokenizer(), out);
      assertEquals(BASE, r.oldVocab());
      assertEquals(4000, r.newVocab());

      assertEquals(
          4000,
          new ObjectMapper()
              .readTree(out.resolve("config.json").toFile())
              .get("vocab_size")
              .asInt());
      assertEquals(4000, Tokenizer.load(out).vocabSize());
      assertTrue(Files.exists(out.resolve("tokenizer.json")));
      LlamaModel before = HfCheckpoint.load(base, DType.F32, Device.CPU);
      LlamaModel after = HfCheckpoint.load(out, DType.F32, Device.CPU);
      assertEquals(tied, !after.weights().containsKey("lm_head.weight"));
      BpeTokenizer baseTok = (BpeTokenizer) Tokenizer.load(base);
      Tokenizer ext = Tokenizer.load(demoTokenizer());
      int h = 32;
      for (String name : new String[] {"model.embed_tokens.weight", "lm_head.weight"}) {
        if (tied && name.equals("lm_head.weight")) continue;
        assertArrayEquals(new long[] {4000, h}, after.weights().get(name).shape());
        float[] old = rows(before, name), grown = rows(after, name);
        // the old rows, bit for bit
        assertArrayEquals(old, Arrays.copyOf(grown, old.length), name);
        for (int id = BASE; id < 4000; id++) {
          int[] src = baseTok.encodeNormalized(ext.piece(id));
          assertTrue(src.length >= 1, ext.piece(id));
          for (int c = 0; c < h; c++) {
            double mean = 0;
            for (int s : src) mean += old[s * h + c];
            mean /= src.length;
            assertEquals(mean, grown[id * h + c], 1e-6, name + " row " + id + " col " + c);
          }
        }
      }
      // a concrete merge: 何处 starts as the mean of 何 and 处
      int heChu = 2130, he = baseTok.pieceId("何"), chu = baseTok.pieceId("处");
      assertEquals("何处", ext.piece(heChu));
      float[] e = rows(after, "model.embed_tokens.weight");
      assertEquals((e[he * h] + e[chu * h]) / 2, e[heChu * h], 1e-6);
      // the untouched weights are the base's
      assertArrayEquals(
          rows(before, "model.layers.0.mlp.down_proj.weight"),
          rows(after, "model.layers.0.mlp.down_proj.weight"));
      // Hanlin's generate runs on it, over the new ids
      int[] ids = ext.encode("何处春风", true, false);
      assertTrue(Arrays.stream(ids).anyMatch(i -> i >= BASE));
      int[] gen =
          TextGeneration.generate(
              after, ids, new GenerationOptions(4, 0, 0, 1, 1, 0, after.config().eosTokenIds()));
      assertTrue(gen.length > ids.length);
    }
  }

  @Test
  void validatesBeforeTouchingTheOutput() throws Exception {
    Path base = baseFolder(false);
    Path busy = tmp.resolve("busy");
    Files.createDirectories(busy);
    Files.writeString(busy.resolve("keep.txt"), "mine");
    var e =
        assertThrows(
            ConfigException.class, () -> VocabResize.resizeFolder(base, demoTokenizer(), busy));
    assertTrue(e.getMessage().contains("not an empty folder"), e.getMessage());
    assertEquals(
        Map.of("keep.txt", "mine"), Map.of("keep.txt", Files.readString(busy.resolve("keep.txt"))));
    assertEquals(1, busy.toFile().list().length);

    // a tokenizer that is not an extension of the base: piece 300 differs
    SentencePieceModel full = SentencePieceModel.read(demoTokenizer());
    var pieces = new java.util.ArrayList<>(full.pieces());
    var p = pieces.get(300);
    pieces.set(300, new SentencePieceModel.Piece("卐", p.score(), p.type()));
    Path other = tmp.resolve("other");
    HfTokenizerJson.writeFolder(SentencePieceModel.llamaStyle(pieces, 0, 1, 2, true, true), other);
    Path out = tmp.resolve("out");
    e = assertThrows(ConfigException.class, () -> VocabResize.resizeFolder(base, other, out));
    assertTrue(
        e.getMessage().contains("does not extend") && e.getMessage().contains("id 300"),
        e.getMessage());
    assertFalse(Files.exists(out));

    // an empty output folder is fine
    Path empty = tmp.resolve("empty");
    Files.createDirectories(empty);
    VocabResize.resizeFolder(base, demoTokenizer(), empty);
    assertTrue(Files.exists(empty.resolve("model.safetensors")));
    assertFalse(Files.exists(tmp.resolve("empty.resize-tmp")));
  }
}
