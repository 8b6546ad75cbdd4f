package dev.hanlin.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hanlin.config.ConfigException;
import dev.hanlin.torch.DType;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaConfigTest {
  static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void readsTransformers5RopeParameters() {
    LlamaConfig c = LlamaConfig.read(TestData.dir("parity").resolve("llama3/config.json"));
    RopeScaling.Llama3 l = assertInstanceOf(RopeScaling.Llama3.class, c.ropeScaling());
    assertEquals(8.0, l.factor());
    assertEquals(16, l.originalMaxPositions());
    assertEquals(500000.0, c.ropeTheta());
    assertEquals(16, c.headDim());
    assertEquals(DType.F32, c.dtype());
  }

  @Test
  void readsTransformers4RopeScaling() throws Exception {
    ObjectNode n = (ObjectNode) JSON.readTree(LlamaConfig.tinyLlama1b().toJsonString());
    n.put("rope_theta", 1234.0);
    n.putObject("rope_scaling").put("type", "linear").put("factor", 4.0);
    LlamaConfig c = LlamaConfig.fromJson(n);
    assertEquals(new RopeScaling.Linear(4.0), c.ropeScaling());
    assertEquals(1234.0, c.ropeTheta());
  }

  @Test
  void jsonRoundTripKeepsEveryField() {
    for (String name :
        new String[] {"mha", "gqa", "tied", "llama3", "linear", "dynamic", "headdim_bias"}) {
      LlamaConfig c = LlamaConfig.read(TestData.dir("parity").resolve(name + "/config.json"));
      assertEquals(c, LlamaConfig.fromJson(c.toJson()), name);
    }
  }

  @Test
  void parameterCountMatchesTheWeights() {
    LlamaConfig c = LlamaConfig.read(TestData.dir("parity").resolve("headdim_bias/config.json"));
    long n =
        LlamaModel.expectedShapes(c).values().stream()
            .mapToLong(s -> java.util.Arrays.stream(s).reduce(1, (a, b) -> a * b))
            .sum();
    assertEquals(n, c.parameterCount());
    assertEquals(1_100_048_384L, LlamaConfig.tinyLlama1b().parameterCount()); // TinyLlama-1.1B
    assertEquals(6_738_415_616L, LlamaConfig.llama2_7b().parameterCount()); // Llama-2-7b-hf
  }

  @Test
  void errorsNameTheFileAndField(@TempDir Path tmp) throws Exception {
    Path f = tmp.resolve("config.json");
    ObjectNode n = (ObjectNode) JSON.readTree(LlamaConfig.tinyLlama1b().toJsonString());
    n.put("num_key_value_heads", 5);
    Files.writeString(f, n.toString());
    var e = assertThrows(ConfigException.class, () -> LlamaConfig.read(f));
    assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("num_key_value_heads"), e.getMessage());

    n.put("num_key_value_heads", 4).put("hidden_size", "big");
    Files.writeString(f, n.toString());
    e = assertThrows(ConfigException.class, () -> LlamaConfig.read(f));
    assertTrue(e.getMessage().contains("hidden_size must be an integer"), e.getMessage());

    n.put("hidden_size", 2048).remove("vocab_size");
    Files.writeString(f, n.toString());
    e = assertThrows(ConfigException.class, () -> LlamaConfig.read(f));
    assertTrue(e.getMessage().contains("missing required field vocab_size"), e.getMessage());

    n.put("vocab_size", 32000)
        .putObject("rope_scaling")
        .put("rope_type", "yarn")
        .put("factor", 2.0);
    Files.writeString(f, n.toString());
    e = assertThrows(ConfigException.class, () -> LlamaConfig.read(f));
    assertTrue(e.getMessage().contains("rope_type 'yarn' is not supported"), e.getMessage());

    Files.writeString(f, "{\n  \"vocab_size\": 3,\n  oops\n}");
    e = assertThrows(ConfigException.class, () -> LlamaConfig.read(f));
    assertTrue(e.getMessage().contains("line 3"), e.getMessage());
  }
}
