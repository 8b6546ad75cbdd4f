package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class GenerateCommandTest {
  static Path parity(String name) {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      Path d = p.resolve("test-data/parity").resolve(name);
      if (Files.isDirectory(d)) return d;
    }
    throw new IllegalStateException("test-data/parity not found");
  }

  static String run(String... args) {
    PrintStream old = System.out;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      assertEquals(0, Cli.run(args), "exit code");
    } finally {
      System.setOut(old);
    }
    return buf.toString(StandardCharsets.UTF_8);
  }

  @Test
  void modeFlagBecomesASubcommand() {
    assertArrayEquals(
        new String[] {"generate", "--x"},
        Cli.rewriteMode(new String[] {"--mode", "generate", "--x"}));
    assertArrayEquals(new String[] {"eval"}, Cli.rewriteMode(new String[] {"--mode=eval"}));
  }

  @Test
  void helpListsTheModes() {
    String help = run("--help");
    for (String mode :
        new String[] {
          "generate", "tokenize", "extend-vocab", "prepare", "verify-data", "pretrain", "eval"
        }) assertTrue(help.contains(mode), mode + " missing from\n" + help);
  }

  @Test
  void generateJsonMatchesTransformersGreedyIds() throws Exception {
    Path dir = parity("tied");
    JsonNode gold = new ObjectMapper().readTree(Files.readString(dir.resolve("generate.json")));
    StringBuilder prompt = new StringBuilder();
    for (JsonNode x : gold.get("prompt_ids"))
      prompt.append(prompt.isEmpty() ? "" : ",").append(x.asInt());
    String out =
        run(
            "--mode",
            "generate",
            "--model",
            dir.toString(),
            "--prompt-ids",
            prompt.toString(),
            "--max-new-tokens",
            "20",
            "--device",
            "cpu",
            "--json");
    JsonNode j = new ObjectMapper().readTree(out);
    assertEquals(gold.get("prompt_ids"), j.get("prompt_ids"));
    JsonNode all = gold.get("output_ids");
    int p = gold.get("prompt_ids").size();
    assertEquals(all.size() - p, j.get("output_ids").size());
    for (int i = 0; i < j.get("output_ids").size(); i++)
      assertEquals(all.get(p + i).asInt(), j.get("output_ids").get(i).asInt(), "token " + i);
  }

  @Test
  void badArgumentsFailWithoutAStackTrace() {
    assertEquals(
        2, Cli.run("--mode", "generate", "--model", "x", "--prompt-ids", "1", "--top-p", "abc"));
    assertEquals(1, Cli.run("--mode", "generate", "--model", "/nonexistent", "--prompt-ids", "1"));
  }

  /** Issue 13: {@code generate --model output/nope --prompt X} blamed the tokenizer. */
  @Test
  void aMissingModelFolderIsNamedAsSuch(@org.junit.jupiter.api.io.TempDir Path tmp) {
    for (String mode : new String[] {"generate", "chat"}) {
      PrintStream old = System.err;
      ByteArrayOutputStream buf = new ByteArrayOutputStream();
      System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
      try {
        Path nope = tmp.resolve("nope");
        String[] args =
            mode.equals("generate")
                ? new String[] {"--mode", mode, "--model", nope.toString(), "--prompt", "春风"}
                : new String[] {"--mode", mode, "--model", nope.toString()};
        assertEquals(1, Cli.run(args), mode);
      } finally {
        System.setErr(old);
      }
      String msg = buf.toString(StandardCharsets.UTF_8);
      assertTrue(msg.contains("nope: no such folder"), mode + ": " + msg);
      assertTrue(!msg.contains("tokenizer"), mode + ": " + msg);
    }
  }
}
