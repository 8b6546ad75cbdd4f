package dev.hanlin.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Grad;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Parity with transformers: models and outputs saved by test-data/parity/make_goldens.py (random
 * init LlamaForCausalLM, fp32) must give the same logits (max |Δ| ≤ 1e-4) and the same greedy ids.
 */
class ParityTest {
  static final Path PARITY = TestData.dir("parity");
  static final double TOLERANCE = 1e-4;

  static Stream<String> cases() {
    return Stream.of("mha", "gqa", "tied", "llama3", "linear", "dynamic", "headdim_bias");
  }

  @ParameterizedTest
  @MethodSource("cases")
  void logitsMatchTransformers(String name) throws Exception {
    Path dir = PARITY.resolve(name);
    LlamaModel model = HfCheckpoint.load(dir, DType.F32, Device.CPU);
    double maxDiff = maxLogitDiff(model, dir.resolve("goldens.safetensors"));
    System.out.printf("parity %s: max |dlogits| = %.3g%n", name, maxDiff);
    assertTrue(maxDiff <= TOLERANCE, name + ": max |Δlogits| " + maxDiff + " > " + TOLERANCE);
  }

  /** Max |Δ| between the model's logits and the golden logits for the golden ids. */
  static double maxLogitDiff(LlamaModel model, Path goldens) throws Exception {
    try (SafetensorsFile g = SafetensorsFile.open(goldens);
        Scope s = Scope.open();
        Grad.Guard ng = Grad.inference()) {
      Tensor ids = g.load("input_ids");
      Tensor expected = g.load("logits");
      Tensor logits = model.forward(ids, null);
      assertArrayEquals(expected.shape(), logits.shape());
      return logits.sub(expected).abs().max().item();
    }
  }

  @ParameterizedTest
  @MethodSource("cases")
  void greedyGenerationMatchesTransformers(String name) throws Exception {
    Path dir = PARITY.resolve(name);
    JsonNode gen = new ObjectMapper().readTree(Files.readString(dir.resolve("generate.json")));
    int[] prompt = ints(gen.get("prompt_ids"));
    int[] expected = ints(gen.get("output_ids"));
    LlamaModel model = HfCheckpoint.load(dir, DType.F32, Device.CPU);
    int[] out =
        TextGeneration.generate(
            model,
            prompt,
            GenerationOptions.greedy(
                gen.get("max_new_tokens").asInt(), List.of(gen.get("eos_token_id").asInt())));
    assertArrayEquals(expected, out, name + ": greedy ids differ from transformers");
  }

  @ParameterizedTest
  @MethodSource("cases")
  void savedCheckpointReloadsWithSameLogits(String name, @org.junit.jupiter.api.io.TempDir Path tmp)
      throws Exception {
    LlamaModel model = HfCheckpoint.load(PARITY.resolve(name), DType.F32, Device.CPU);
    Path out = tmp.resolve(name);
    HfCheckpoint.save(model, out, 64 * 1024); // small shards: exercises the index
    assertTrue(Files.exists(out.resolve("model.safetensors.index.json")));
    LlamaModel again = HfCheckpoint.load(out, DType.F32, Device.CPU);
    assertEquals(model.config(), again.config());
    assertEquals(
        0.0,
        maxLogitDiff(again, PARITY.resolve(name).resolve("goldens.safetensors"))
            - maxLogitDiff(model, PARITY.resolve(name).resolve("goldens.safetensors")));
  }

  static int[] ints(JsonNode a) {
    int[] r = new int[a.size()];
    for (int i = 0; i < r.length; i++) r[i] = a.get(i).asInt();
    return r;
  }
}
