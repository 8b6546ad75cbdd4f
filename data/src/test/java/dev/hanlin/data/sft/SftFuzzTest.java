package dev.hanlin.data.sft;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.hanlin.data.DataException;
import dev.hanlin.data.Fixtures;
import dev.hanlin.data.FuzzFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzes the SFT record reader and the masking that turns records into examples. The first byte
 * picks the record layout (text, prompt_response, chat, alpaca: byte % 4) and the container
 * (.jsonl, .json, .csv: byte / 4 % 3); the rest is the file. Tokenized with the byte-level test
 * tokenizer. Seeds: src/test/resources/dev/hanlin/data/sft/SftFuzzTestInputs. A finding is anything
 * but a DataException or IOException, a hang, or an example whose labels do not fit its ids.
 */
class SftFuzzTest {
  private static final int MAX_LENGTH = 512; // the alpaca template alone is ~200 byte tokens
  private static final String[] FORMATS = {"text", "prompt_response", "chat", "alpaca"};
  private static final String[] EXTENSIONS = {".jsonl", ".json", ".csv"};

  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  @FuzzTest(maxDuration = "30s")
  void sftRecords(byte[] bytes) throws Exception {
    if (bytes.length == 0) return;
    int pick = bytes[0] & 0xff;
    SftOptions options = SftOptions.DEFAULT.withFormat(FORMATS[pick % 4]);
    FuzzFiles.onTempFile(
        EXTENSIONS[pick / 4 % 3],
        java.util.Arrays.copyOfRange(bytes, 1, bytes.length),
        file -> {
          SftDataset data;
          try {
            data =
                SftDataset.load(List.of(file), new Fixtures.ByteTokenizer(), options, MAX_LENGTH);
          } catch (DataException | IOException e) {
            return; // the reader's own errors, naming file and line
          }
          for (SftExample ex : data.examples()) {
            if (ex.ids().length != ex.labels().length || ex.ids().length > MAX_LENGTH)
              throw new IllegalStateException("example of " + ex.ids().length + " ids");
          }
        });
  }

  /** The seeds of each layout give examples, so mutations start past the record checks. */
  @Test
  void validSeedsGiveExamples() throws Exception {
    Path dir = Path.of("src/test/resources/dev/hanlin/data/sft/SftFuzzTestInputs/sftRecords");
    for (String name : List.of("prompt_response.jsonl", "alpaca.json", "chat.jsonl", "text.csv")) {
      byte[] b = Files.readAllBytes(dir.resolve(name));
      int pick = b[0] & 0xff;
      Path file = Files.createTempFile("seed", EXTENSIONS[pick / 4 % 3]);
      try {
        Files.write(file, java.util.Arrays.copyOfRange(b, 1, b.length));
        SftOptions options = SftOptions.DEFAULT.withFormat(FORMATS[pick % 4]);
        SftDataset d =
            SftDataset.load(List.of(file), new Fixtures.ByteTokenizer(), options, MAX_LENGTH);
        assertEquals(name.equals("chat.jsonl") ? 1 : 2, d.size(), name);
      } finally {
        Files.deleteIfExists(file);
      }
    }
  }
}
