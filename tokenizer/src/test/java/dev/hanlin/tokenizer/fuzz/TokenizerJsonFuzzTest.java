package dev.hanlin.tokenizer.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.hanlin.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzes the HF tokenizer.json reader (HfTokenizerJson) and the encoder built from what it accepts.
 * Seeds: src/test/resources/dev/hanlin/tokenizer/fuzz/TokenizerJsonFuzzTestInputs. A finding is
 * anything but IllegalArgumentException or an I/O error naming the file, a hang, or an exception
 * from a tokenizer the reader accepted.
 */
class TokenizerJsonFuzzTest {

  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  @FuzzTest(maxDuration = "30s")
  void tokenizerJson(byte[] bytes) throws Exception {
    Roundtrip.loadAndExercise(bytes, ".json");
  }

  /**
   * The HF-layout seed made from bpe_split_digits.model (by make_seeds.py) loads with that model's
   * pieces in the same order, so mutations start from a tokenizer.json the encoder runs on.
   */
  @Test
  void llamaLayoutSeedHasItsModelsPieces() {
    Path seeds = Path.of("src/test/resources/dev/hanlin/tokenizer/fuzz");
    Tokenizer json =
        Tokenizer.load(
            seeds.resolve("TokenizerJsonFuzzTestInputs/tokenizerJson/llama_layout.json"));
    Tokenizer model =
        Tokenizer.load(
            seeds.resolve("TokenizerModelFuzzTestInputs/tokenizerModel/bpe_split_digits.model"));
    assertEquals(model.vocabSize(), json.vocabSize());
    for (int id = 0; id < model.vocabSize(); id++) assertEquals(model.piece(id), json.piece(id));
    assertEquals(model.unkId(), json.unkId());
  }
}
