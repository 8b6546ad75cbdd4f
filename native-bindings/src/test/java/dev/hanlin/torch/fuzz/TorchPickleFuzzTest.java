package dev.hanlin.torch.fuzz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.TorchPickle;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzes the pickle interpreter that reads {@code pytorch_model.bin}: the input is {@code
 * data.pkl}, stored in a torch.save-style zip beside storages {@code data/0} to {@code data/3} of
 * 64 bytes each, so pickles that reach tensors are rebuilt through libtorch. Seeds (a state dict
 * written by torch.save, small ones written by Python's pickle, see test-data/fuzz/make_seeds.py):
 * src/test/resources/dev/hanlin/torch/fuzz/TorchPickleFuzzTestInputs. A finding is anything but the
 * reader's IOException, a hang, or a crash.
 */
class TorchPickleFuzzTest extends LibtorchFuzzTarget {
  private static final int STORAGES = 4, STORAGE_BYTES = 64;
  private static final Path SEEDS =
      Path.of("src/test/resources/dev/hanlin/torch/fuzz/TorchPickleFuzzTestInputs/torchPickle");

  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  @FuzzTest(maxDuration = "30s")
  void torchPickle(byte[] pickle) throws Exception {
    onTempFile(
        ".bin",
        file -> {
          writeZip(file, pickle);
          Map<String, Tensor> tensors;
          try {
            tensors = TorchPickle.loadStateDict(file);
          } catch (IOException e) {
            return; // the reader's own error, naming the file
          }
          try (Scope s = Scope.open()) {
            for (Tensor t : tensors.values()) {
              t.sum();
              t.release();
            }
          }
        });
  }

  /** The small state-dict seeds load as tensors, so mutations start from pickles that work. */
  @Test
  void smallSeedsLoad() throws Exception {
    for (String name :
        List.of("small_state_dict_protocol2.pkl", "small_state_dict_protocol4.pkl")) {
      onTempFile(
          ".bin",
          file -> {
            writeZip(file, Files.readAllBytes(SEEDS.resolve(name)));
            Map<String, Tensor> t = TorchPickle.loadStateDict(file);
            assertEquals(List.of("w", "w_t", "ids", "empty"), List.copyOf(t.keySet()), name);
            assertArrayEquals(new long[] {3, 2}, t.get("w_t").shape(), name);
            t.values().forEach(Tensor::release);
          });
    }
  }

  private static void writeZip(Path file, byte[] pickle) throws IOException {
    try (OutputStream out = Files.newOutputStream(file);
        ZipOutputStream zip = new ZipOutputStream(out)) {
      zip.putNextEntry(new ZipEntry("archive/data.pkl"));
      zip.write(pickle);
      for (int k = 0; k < STORAGES; k++) {
        zip.putNextEntry(new ZipEntry("archive/data/" + k));
        byte[] storage = new byte[STORAGE_BYTES];
        for (int i = 0; i < storage.length; i++) storage[i] = (byte) (i * 7 + k);
        zip.write(storage);
      }
    }
  }
}
