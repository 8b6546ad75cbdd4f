package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.model.GenerationOptions;
import dev.hanlin.model.HfCheckpoint;
import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.TextGeneration;
import dev.hanlin.serve.TextStream;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --mode chat} driven through a real terminal (tmux send-keys / capture-pane): two turns,
 * {@code /reset}, a third, with every prompt's ids equal to the template built by hand with
 * sentencepiece (test-data/serve/chat_ids.py); {@code generate --chat} builds the same ids; {@code
 * --mode serve} in its own JVM stops cleanly on SIGTERM, ending an open stream with [DONE].
 */
class TalkCommandsTest {
  @TempDir static Path tmp;
  static Path dir;
  static LlamaModel model;
  static Tokenizer tok;
  static final ObjectMapper JSON = new ObjectMapper();

  @BeforeAll
  static void tinyModel() throws IOException {
    String json =
        """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000,
         "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
         "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "initializer_range": 0.5,
         "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false}
        """;
    dir = tmp.resolve("tiny");
    LlamaConfig c = LlamaConfig.fromJson(JSON.readTree(json));
    HfCheckpoint.save(LlamaModel.init(c, 11, DType.F32, Device.CPU), dir, 1L << 40);
    Files.copy(testData("assets/tokenizer/tokenizer.model"), dir.resolve("tokenizer.model"));
    model = HfCheckpoint.load(dir, DType.F32, Device.CPU);
    tok = Tokenizer.load(dir);
  }

  static Path testData(String name) {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      Path d = p.resolve("test-data").resolve(name);
      if (Files.exists(d)) return d;
    }
    throw new IllegalStateException("test-data/" + name + " not found (run test-data/*/setup.sh)");
  }

  /** The ids chat_ids.py builds by hand for {@code turns} ([role, text] pairs). */
  static int[] handBuilt(List<String[]> turns) throws Exception {
    Path in = Files.createTempFile(tmp, "turns", ".json");
    Files.writeString(in, JSON.writeValueAsString(turns));
    Process p =
        new ProcessBuilder(
                "/usr/bin/python3",
                testData("serve/chat_ids.py").toString(),
                dir.resolve("tokenizer.model").toString(),
                in.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, out);
    return JSON.readValue(out, int[].class);
  }

  /** The reply chat prints for {@code prompt}: greedy generation alone, decoded. */
  static String reply(int[] prompt, int maxNew) {
    int[] all =
        TextGeneration.generate(
            model, prompt, GenerationOptions.greedy(maxNew, model.config().eosTokenIds()));
    TextStream ts = new TextStream(tok, List.of());
    StringBuilder sb = new StringBuilder();
    for (int i = prompt.length; i < all.length; i++)
      if (!model.config().eosTokenIds().contains(all[i])) sb.append(ts.add(all[i]));
    return sb.append(ts.finish()).toString();
  }

  static List<String> javaCommand(String... args) {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-cp",
                System.getProperty("java.class.path"),
                "dev.hanlin.cli.Main"));
    cmd.addAll(List.of(args));
    return cmd;
  }

  /** Types {@code text} into the tmux session "chat" and presses Enter. */
  static void typeLine(String text) throws Exception {
    tmux("send-keys", "-t", "chat", "-l", text);
    tmux("send-keys", "-t", "chat", "Enter");
  }

  static String tmux(String... args) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("tmux", "-u", "-L", "hanlin-chat-test"));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().put("LANG", "C.UTF-8");
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(30, TimeUnit.SECONDS), "tmux " + String.join(" ", args));
    return out;
  }

  static String screen() throws Exception {
    return tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "chat");
  }

  /** Waits (up to two minutes) until the screen shows {@code n} matches of {@code regex}. */
  static String waitForScreen(String regex, int n) throws Exception {
    Pattern p = Pattern.compile(regex);
    String s = "";
    for (int i = 0; i < 1200; i++) {
      s = screen();
      Matcher m = p.matcher(s);
      int count = 0;
      while (m.find()) count++;
      if (count >= n) return s;
      Thread.sleep(100);
    }
    throw new AssertionError("never saw " + n + " × /" + regex + "/ on the screen:\n" + s);
  }

  static List<int[]> promptIds(String screen) throws IOException {
    List<int[]> ids = new ArrayList<>();
    Matcher m = Pattern.compile("prompt ids: (\\[[0-9, ]*\\])").matcher(screen);
    while (m.find()) ids.add(JSON.readValue(m.group(1), int[].class));
    return ids;
  }

  @Test
  void chatInATerminalUsesTheTemplateTurnByTurn() throws Exception {
    Path script = tmp.resolve("chat.sh");
    StringBuilder sh = new StringBuilder("#!/bin/sh\nexec");
    for (String a :
        javaCommand(
            "--mode",
            "chat",
            "--model",
            dir.toString(),
            "--device",
            "cpu",
            "--temperature",
            "0",
            "--max-new-tokens",
            "6",
            "--system",
            "你是助手",
            "--show-ids")) sh.append(" '").append(a.replace("'", "'\\''")).append("'");
    sh.append("\n");
    Files.writeString(script, sh);
    TrainerScriptTest.assumeUtf8CommandLines();
    tmux("kill-server"); // a session left by an earlier run
    tmux(
        "new-session",
        "-d",
        "-s",
        "chat",
        "-x",
        "250",
        "-y",
        "50",
        "-e",
        "LANG=C.UTF-8",
        "sh " + script + "; sleep 600");
    try {
      waitForScreen("Human: ", 1);
      typeLine("你好");
      waitForScreen("Human: ", 2);
      typeLine("天气怎么样");
      waitForScreen("Human: ", 3);
      typeLine("/reset");
      waitForScreen("\\(conversation reset\\)", 1);
      typeLine("你好");
      waitForScreen("Human: ", 5);
      typeLine("/exit");
      String s = waitForScreen("Assistant: ", 3);
      List<int[]> got = promptIds(s);
      assertEquals(3, got.size(), s);

      List<String[]> turns = new ArrayList<>();
      turns.add(new String[] {"System", "你是助手"});
      turns.add(new String[] {"Human", "你好"});
      int[] first = handBuilt(turns);
      assertEquals(Arrays.toString(first), Arrays.toString(got.get(0)), "turn 1");
      String reply1 = reply(first, 6);
      turns.add(new String[] {"Assistant", reply1});
      turns.add(new String[] {"Human", "天气怎么样"});
      assertEquals(Arrays.toString(handBuilt(turns)), Arrays.toString(got.get(1)), "turn 2");
      // after /reset the history is gone: the same prompt as the first turn
      assertEquals(Arrays.toString(first), Arrays.toString(got.get(2)), "after /reset");
    } finally {
      tmux("kill-server");
    }
  }

  @Test
  void generateChatWrapsThePromptInTheTemplate() throws Exception {
    String out =
        GenerateCommandTest.run(
            "--mode",
            "generate",
            "--model",
            dir.toString(),
            "--prompt",
            "介绍一下北京",
            "--chat",
            "--max-new-tokens",
            "3",
            "--device",
            "cpu",
            "--json");
    JsonNode j = JSON.readTree(out);
    int[] want = handBuilt(List.<String[]>of(new String[] {"Human", "介绍一下北京"}));
    assertEquals(Arrays.toString(want), j.get("prompt_ids").toString().replace(",", ", "));
  }

  @Test
  void serveStopsCleanlyOnSigterm() throws Exception {
    Path log = tmp.resolve("serve.log");
    Process p =
        new ProcessBuilder(
                javaCommand(
                    "--mode",
                    "serve",
                    "--model",
                    dir.toString(),
                    "--device",
                    "cpu",
                    "--port",
                    "0",
                    "--served-model-name",
                    "tiny",
                    "--grace-seconds",
                    "1"))
            .redirectError(log.toFile())
            .start();
    try {
      BufferedReader out =
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
      String line = out.readLine();
      assertTrue(line != null && line.startsWith("serving tiny on"), line + Files.readString(log));
      int port = Integer.parseInt(line.replaceAll(".*:(\\d+) .*", "$1"));
      HttpResponse<java.io.InputStream> r =
          HttpClient.newHttpClient()
              .send(
                  HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                      .POST(
                          HttpRequest.BodyPublishers.ofString(
                              "{\"model\":\"tiny\",\"prompt\":\"你好\",\"max_tokens\":4000,"
                                  + "\"temperature\":0,\"stream\":true}"))
                      .build(),
                  HttpResponse.BodyHandlers.ofInputStream());
      BufferedReader events =
          new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
      assertTrue(events.readLine().startsWith("data: "), "the stream started");
      p.destroy(); // SIGTERM
      String last = null;
      int pieces = 0;
      for (String e; (e = events.readLine()) != null; ) {
        if (!e.startsWith("data: ")) continue;
        last = e;
        pieces++;
        assertTrue(!e.contains("\"finish_reason\":\"length\""), "aborted, not finished: " + e);
      }
      assertEquals("data: [DONE]", last, "the open stream ends properly");
      assertTrue(pieces < 4000, "the request was cut short by the shutdown");
      assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the server exits");
      assertEquals(143, p.exitValue()); // 128 + SIGTERM, after the shutdown hook ran
      assertTrue(Files.readString(log).contains("serve: stopped"), Files.readString(log));
      assertThrows(IOException.class, () -> new Socket("127.0.0.1", port).close());
    } finally {
      p.destroyForcibly();
    }
  }

  @Test
  void chatAndServeAreModes() {
    String help = GenerateCommandTest.run("--help");
    assertTrue(help.contains("chat") && help.contains("serve"), help);
  }
}
