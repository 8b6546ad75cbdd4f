package dev.hanlin.tokenizer.fuzz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.hanlin.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzes the tokenizer.model reader (SentencePiece's ModelProto, read by our own protobuf decoder)
 * and the encoder built from what it accepts. Without JAZZER_FUZZ it replays the seeds in
 * src/test/resources/dev/hanlin/tokenizer/fuzz/TokenizerModelFuzzTestInputs (small models trained
 * by sentencepiece, see test-data/fuzz/make_seeds.py); with it, Jazzer mutates them.
 *
 * <p>A finding is anything but a documented rejection (IllegalArgumentException, or an I/O error
 * naming the file), a hang, or an exception from a tokenizer the reader accepted.
 */
class TokenizerModelFuzzTest {

  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  @FuzzTest(maxDuration = "30s")
  void tokenizerModel(byte[] bytes) throws Exception {
    Roundtrip.loadAndExercise(bytes, ".model");
  }

  /**
   * The trained seeds load and encode as sentencepiece does (ids printed by python3-sentencepiece
   * 0.1.97 for these files), so mutations start from models the whole encoder runs on.
   */
  @Test
  void trainedSeedsMatchSentencePiece() {
    Path dir =
        Path.of(
            "src/test/resources/dev/hanlin/tokenizer/fuzz/TokenizerModelFuzzTestInputs/tokenizerModel");
    String text = "子曰：学而时习之 fox 2024 龘";
    Tokenizer bytes = Tokenizer.load(dir.resolve("bpe_byte_fallback.model"));
    assertEquals(360, bytes.vocabSize());
    assertArrayEquals(
        new int[] {
          275, 301, 348, 358, 343, 304, 347, 335, 287, 275, 321, 276, 329, 275, 311, 309, 311, 313,
          275, 236, 193, 155
        },
        bytes.encode(text, false, false));
    Tokenizer digits = Tokenizer.load(dir.resolve("bpe_split_digits.model"));
    assertArrayEquals(
        new int[] {42, 138, 43, 127, 37, 55, 54, 55, 91, 89, 91, 93, 55, 0},
        digits.encode(text, false, false));
  }
}
