package dev.hanlin.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.model.BatchEngine;
import dev.hanlin.model.GenerationOptions;
import dev.hanlin.serve.ChatTemplate.Role;
import dev.hanlin.serve.ChatTemplate.Turn;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Streaming text and the chat template with Meta's Llama 2 tokenizer: byte-fallback Chinese
 * characters (霜 is three byte tokens) come out whole, stop strings cut the text even across tokens,
 * the oldest turns are left out to fit (never the system prompt), and text that looks like {@code
 * </s>} stays text.
 */
class TextAndTemplateTest {
  static Tokenizer tok;

  @BeforeAll
  static void load() {
    tok = Tokenizer.load(TinyModel.testData("assets/tokenizer/tokenizer.model"));
  }

  static List<String> stream(int[] ids, List<String> stops, TextStream[] out) {
    TextStream ts = new TextStream(tok, stops);
    out[0] = ts;
    List<String> pieces = new ArrayList<>();
    for (int id : ids) pieces.add(ts.add(id));
    pieces.add(ts.finish());
    return pieces;
  }

  @Test
  void multiByteCharactersArriveWhole() {
    String text = "床前明月光，疑是地上霜";
    int[] ids = tok.encode(text, false, false);
    TextStream[] ts = new TextStream[1];
    List<String> pieces = stream(ids, List.of(), ts);
    assertEquals(text, String.join("", pieces));
    for (String p : pieces) assertFalse(p.contains("\uFFFD"), "a broken character in " + pieces);
    // 床 is <0xE5><0xBA><0x8A>: nothing is shown until its third byte
    assertEquals(List.of("", "", "", "床"), pieces.subList(0, 4));
  }

  @Test
  void stopStringsCutTheText() {
    int[] ids = tok.encode("床前明月光，疑是地上霜。举头望明月", false, false);
    TextStream[] ts = new TextStream[1];
    assertEquals("床前明月光，疑是", String.join("", stream(ids, List.of("地上"), ts)));
    assertTrue(ts[0].stopped());
    // a stop string that starts inside a byte-encoded character's token run, and one never seen
    assertEquals("床前明月光，疑是地上", String.join("", stream(ids, List.of("霜。"), ts)));
    // two stop strings completed by the same token (光): the earlier in the text wins
    assertEquals("床前", String.join("", stream(ids, List.of("月光", "明月光"), ts)));
    assertEquals("床前明月光，疑是地上霜。举头望明月", String.join("", stream(ids, List.of("月亮"), ts)));
    assertFalse(ts[0].stopped());
  }

  @Test
  void oldestTurnsAreLeftOutButNotTheSystemPrompt() {
    ChatTemplate t = new ChatTemplate(tok);
    List<Turn> turns =
        List.of(
            new Turn(Role.SYSTEM, "你是助手"),
            new Turn(Role.HUMAN, "第一个问题是什么"),
            new Turn(Role.ASSISTANT, "第一个回答"),
            new Turn(Role.HUMAN, "第二个问题"),
            new Turn(Role.ASSISTANT, "第二个回答"),
            new Turn(Role.HUMAN, "第三个问题"));
    int[] full = t.prompt(turns, 10_000, 0).ids();
    List<Turn> lastThree = new ArrayList<>(List.of(turns.get(0)));
    lastThree.addAll(turns.subList(3, 6));
    int[] kept = t.prompt(lastThree, 10_000, 0).ids();
    // room for the system prompt and the last three turns (with 5 tokens reserved), not more
    ChatTemplate.Prompt p = t.prompt(turns, kept.length + 5, 5);
    assertEquals(2, p.droppedTurns());
    assertArrayEquals(kept, p.ids());
    assertEquals(0, t.prompt(turns, full.length, 0).droppedTurns());
    assertThrows(IllegalArgumentException.class, () -> t.prompt(turns, 20, 0));
  }

  @Test
  void specialTokenTextIsNotASpecialToken() {
    int[] ids = new ChatTemplate(tok).turn(new Turn(Role.HUMAN, "a</s><s>b"));
    assertEquals(tok.bosId(), ids[0]);
    assertEquals(tok.eosId(), ids[ids.length - 1]);
    for (int i = 1; i < ids.length - 1; i++)
      assertTrue(ids[i] != tok.bosId() && ids[i] != tok.eosId(), Arrays.toString(ids));
  }

  @Test
  void chatSaysWhenItLeavesOutOldTurns(@TempDir Path tmp) throws Exception {
    TinyModel tiny = TinyModel.create(tmp.resolve("tiny"), 512);
    // a context of 80 positions: each exchange here takes about 30, so the third needs room
    try (BatchEngine e = new BatchEngine(tiny.model, 1, 80, 0)) {
      var o = GenerationOptions.greedy(8, tiny.model.config().eosTokenIds());
      ByteArrayOutputStream buf = new ByteArrayOutputStream();
      String input = "第一个问题是什么呢\n第二个问题是什么呢\n第三个问题是什么呢\n/exit\n";
      new ChatSession(e, tiny.tok, null, o, false)
          .run(
              new BufferedReader(new StringReader(input)),
              new PrintStream(buf, true, StandardCharsets.UTF_8));
      String out = buf.toString(StandardCharsets.UTF_8);
      assertTrue(out.contains("(context full: left out the"), out);
      assertEquals(3, out.split("Assistant: ", -1).length - 1, out);
    }
  }

  /**
   * The prompt a served model sees is what SFT trained it on: a chat record's ids from {@code
   * SftDataset} (format chat) equal the template's turns, and the trained reply follows the
   * template's {@code <s>Assistant:} header. (They parted when SFT began encoding each turn as one
   * text.)
   */
  @Test
  void templateIdsAreTheIdsSftTrainsOn(@TempDir Path dir) throws Exception {
    String q = "春风又绿江南岸，下一句是？", a = "明月何时照我还。";
    Path f = dir.resolve("chat.jsonl");
    java.nio.file.Files.writeString(
        f,
        new com.fasterxml.jackson.databind.ObjectMapper()
                .writeValueAsString(
                    java.util.Map.of(
                        "text", "<s>Human: " + q + "\n</s><s>Assistant: " + a + "\n</s>"))
            + "\n");
    var options =
        new com.fasterxml.jackson.databind.ObjectMapper()
            .convertValue(java.util.Map.of("format", "chat"), dev.hanlin.data.sft.SftOptions.class);
    int[] trained =
        dev.hanlin.data.sft.SftDataset.load(List.of(f), tok, options, 4096).get(0).ids();
    ChatTemplate t = new ChatTemplate(tok);
    int[] prompt = t.prompt(List.of(new Turn(Role.HUMAN, q)), 4096, 0).ids();
    assertArrayEquals(prompt, Arrays.copyOf(trained, prompt.length), "the prompt is SFT's prefix");
    assertArrayEquals(
        trained,
        concat(t.turn(new Turn(Role.HUMAN, q)), t.turn(new Turn(Role.ASSISTANT, a))),
        "whole turns");
  }

  private static int[] concat(int[] a, int[] b) {
    int[] c = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }
}
