package dev.hanlin.data.prepare;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzes the JSON Lines and JSON document reader that {@code --mode prepare} runs on raw corpora:
 * an input starting with '[' is read as a .json array, any other as .jsonl. Seeds:
 * src/test/resources/dev/hanlin/data/prepare/JsonlFuzzTestInputs. A finding is any exception
 * (malformed records are counted through the sink, not thrown) other than an IOException, a hang,
 * or a document or bad record on a line the file does not have.
 */
class JsonlFuzzTest {

  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  @FuzzTest(maxDuration = "30s")
  void jsonl(byte[] bytes) throws Exception {
    String ext = bytes.length > 0 && bytes[0] == '[' ? ".json" : ".jsonl";
    DocumentFuzz.read(bytes, ext, "text");
  }
}
