package dev.hanlin.data.prepare;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzes the CSV reader behind {@code --mode prepare} (and manifests): quoting, embedded newlines,
 * ragged rows. Seeds: src/test/resources/dev/hanlin/data/prepare/CsvFuzzTestInputs. A finding is an
 * exception other than an IOException (Csv.MalformedCsv is one), a hang, or a line number outside
 * the file.
 */
class CsvFuzzTest {

  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  @FuzzTest(maxDuration = "30s")
  void csv(byte[] bytes) throws Exception {
    DocumentFuzz.read(bytes, ".csv", "text");
  }
}
