package dev.hanlin.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.model.BatchEngine;
import dev.hanlin.model.GenerationOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server driven by a client we did not write: the official {@code openai} npm package
 * (installed by test-data/serve/setup.sh) runs a chat completion, the same one streamed, a text
 * completion and four bad requests. At temperature 0 the answers must be the text that plain
 * generation gives the same prompt alone.
 */
class ServerClientTest {
  @TempDir static Path tmp;
  static TinyModel tiny;
  static BatchEngine engine;
  static OpenAiServer server;

  @BeforeAll
  static void start() throws IOException {
    tiny = TinyModel.create(tmp.resolve("tiny"), 512);
    engine = new BatchEngine(tiny.model, 4, 512, 8);
    server = new OpenAiServer(engine, tiny.tok, "tiny", "127.0.0.1", 0);
  }

  @AfterAll
  static void stop() {
    server.stop(0);
  }

  @Test
  void officialOpenAiClientGetsTheSoloAnswers() throws Exception {
    Path openai = TinyModel.testData("assets/node/node_modules/openai");
    Path script = TinyModel.testData("serve/openai_client.cjs");
    ProcessBuilder pb = new ProcessBuilder("node", script.toString());
    pb.environment().put("BASE_URL", "http://127.0.0.1:" + server.port() + "/v1");
    pb.environment().put("MODEL", "tiny");
    pb.environment().put("OPENAI_DIR", openai.toString());
    Path log = tmp.resolve("node.err");
    pb.redirectError(log.toFile());
    Process p = pb.start();
    byte[] stdout = p.getInputStream().readAllBytes();
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "node client did not finish");
    assertEquals(0, p.exitValue(), "node client failed: " + Files.readString(log));
    JsonNode out = new ObjectMapper().readTree(new String(stdout, StandardCharsets.UTF_8));

    var turns =
        List.of(
            new ChatTemplate.Turn(ChatTemplate.Role.SYSTEM, "你是一个乐于助人的助手。"),
            new ChatTemplate.Turn(ChatTemplate.Role.HUMAN, "介绍一下北京"));
    int[] prompt = server.chatPrompt(turns, 12);
    var eos = tiny.model.config().eosTokenIds();
    TinyModel.Solo want = tiny.solo(prompt, GenerationOptions.greedy(12, eos));
    assertTrue(!want.text().isEmpty(), "the reference answer is empty");

    JsonNode chat = out.get("chat");
    assertEquals("chat.completion", chat.get("object").asText());
    assertEquals("assistant", chat.get("role").asText());
    assertEquals(want.text(), chat.get("content").asText());
    assertEquals(want.finishReason(), chat.get("finish_reason").asText());
    assertEquals(prompt.length, chat.at("/usage/prompt_tokens").asInt());
    assertEquals(want.tokens(), chat.at("/usage/completion_tokens").asInt());
    assertEquals(prompt.length + want.tokens(), chat.at("/usage/total_tokens").asInt());

    JsonNode stream = out.get("stream");
    assertEquals(want.text(), stream.get("content").asText());
    assertTrue(stream.get("pieces").asInt() > 1, "streamed in several pieces: " + stream);
    assertEquals(want.finishReason(), stream.get("finish_reason").asText());
    assertEquals(want.tokens(), stream.at("/usage/completion_tokens").asInt());

    int[] cprompt = server.encodeCompletionPrompt("床前明月光");
    TinyModel.Solo cwant = tiny.solo(cprompt, GenerationOptions.greedy(8, eos));
    assertEquals(cwant.text(), out.at("/completion/text").asText());
    assertEquals(cprompt.length, out.at("/completion/usage/prompt_tokens").asInt());

    JsonNode errors = out.get("errors");
    String[][] want400 = {
      {"model", "model_not_found"}, {"max_tokens", null}, {"temperature", null}, {"n", null}
    };
    for (int i = 0; i < want400.length; i++) {
      JsonNode e = errors.get(i);
      assertEquals(400, e.get("status").asInt(), e.toString());
      assertEquals("invalid_request_error", e.get("type").asText(), e.toString());
      assertEquals(want400[i][0], e.get("param").asText(), e.toString());
      if (want400[i][1] != null) assertEquals(want400[i][1], e.get("code").asText());
    }
  }
}
