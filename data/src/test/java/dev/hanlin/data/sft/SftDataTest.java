package dev.hanlin.data.sft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.data.Cursor;
import dev.hanlin.data.DataException;
import dev.hanlin.data.Fixtures;
import dev.hanlin.data.LabelledBatch;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SFT data: every record format, the exact prompt/response mask boundary (hand-computed with a byte
 * tokenizer: BOS 1, EOS 2, byte b is b + 3), multi-turn chat masks, truncation, padding, and the
 * resumable shuffled order.
 */
class SftDataTest {
  static final int I = Torch.IGNORE_INDEX;
  final Tokenizer bytes = new Fixtures.ByteTokenizer();
  @TempDir Path tmp;

  static SftOptions options(Map<String, Object> m) {
    return new ObjectMapper().convertValue(m, SftOptions.class);
  }

  SftDataset load(String name, String content, Map<String, Object> opts, int max)
      throws IOException {
    Path f = Fixtures.write(tmp.resolve(name), content);
    return SftDataset.load(List.of(f), bytes, options(opts), max);
  }

  /** Loading {@code content} as file {@code name} fails with a message containing {@code want}. */
  private void assertLoadFails(String name, String content, String want) {
    DataException e = assertThrows(DataException.class, () -> load(name, content, Map.of(), 64));
    assertTrue(e.getMessage().contains(want), e.getMessage());
  }

  @Test
  void promptResponseBoundaryIsExact() throws IOException {
    SftDataset d = load("a.jsonl", "{\"input\": \"hi\", \"target\": \"ok\"}\n", Map.of(), 64);
    SftExample e = d.get(0);
    // "hi" = 104+3, 105+3 after BOS; "ok" = 111+3, 107+3 before EOS
    assertArrayEquals(new int[] {1, 107, 108, 114, 110, 2}, e.ids());
    assertArrayEquals(new int[] {I, I, I, 114, 110, 2}, e.labels());
    SftCollator.Arrays a = new SftCollator(0, 8, 64).collate(List.of(e));
    assertEquals(8, a.length());
    assertArrayEquals(new long[] {1, 107, 108, 114, 110, 2, 0, 0}, a.inputs());
    // target j is the label of position j + 1: the first trained target is at the prompt's last id
    assertArrayEquals(new long[] {I, I, 114, 110, 2, I, I, I}, a.targets());
    assertEquals(3, a.trained());
  }

  @Test
  void trainOnInputsAndCustomFieldNames() throws IOException {
    SftDataset d =
        load(
            "a.jsonl",
            "{\"q\": \"hi\", \"a\": \"ok\"}\n",
            Map.of("prompt_field", "q", "response_field", "a", "train_on_inputs", true),
            64);
    assertArrayEquals(new int[] {1, 107, 108, 114, 110, 2}, d.get(0).labels());
  }

  @Test
  void missingFieldNamesFileAndLine() {
    assertLoadFails(
        "bad.jsonl",
        "{\"input\": \"a\", \"target\": \"b\"}\n\n{\"instruction\": \"a\", \"output\": \"b\"}\n",
        "bad.jsonl:3: missing field 'input'");
    assertLoadFails("bad.csv", "input,answer\nx,y\n", "bad.csv:2: missing field 'target'");
  }

  /** Issue 13 item 9: a null target is not "missing", and a number is not text. */
  @Test
  void nullAndNonStringFieldsAreNamedWithTheirType() {
    assertLoadFails(
        "n.jsonl",
        "{\"input\": \"a\", \"target\": null}\n",
        "n.jsonl:1: field 'target' is null; it must be a string");
    assertLoadFails(
        "m.json",
        "[{\"input\": \"a\", \"target\": \"b\"},\n {\"input\": \"a\", \"target\": 5}]",
        "m.json:2: field 'target' is a number (5); it must be a string");
  }

  /** Issue 13 item 9: invalid UTF-8 in SFT data names file:line and byte, in every format. */
  @Test
  void invalidUtf8IsAnErrorNamingLineAndByte() throws IOException {
    byte[] jsonl =
        "{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": \"a\", \"target\": \"b?\"}\n"
            .getBytes(java.nio.charset.StandardCharsets.UTF_8);
    jsonl[57] = (byte) 0xC3; // the '?' becomes a lone lead byte
    byte[] csv = "input,target\nx,y\nx,?\n".getBytes(java.nio.charset.StandardCharsets.UTF_8);
    csv[19] = (byte) 0xFF; // the '?'
    byte[] json =
        "[{\"input\": \"a\",\n \"target\": \"?\"}]"
            .getBytes(java.nio.charset.StandardCharsets.UTF_8);
    json[json.length - 4] = (byte) 0xFF;
    for (var c :
        List.of(Map.entry("u.jsonl", jsonl), Map.entry("u.csv", csv), Map.entry("u.json", json))) {
      Path f = Files.write(tmp.resolve(c.getKey()), c.getValue());
      DataException e =
          assertThrows(
              DataException.class, () -> SftDataset.load(List.of(f), bytes, options(Map.of()), 64));
      String want =
          switch (c.getKey()) {
            case "u.jsonl" -> f + ":2: invalid UTF-8 at byte 57";
            case "u.csv" -> f + ":3: invalid UTF-8 at byte 19";
            default -> f + ":2: invalid UTF-8 at byte 28";
          };
      assertTrue(e.getMessage().startsWith(want), e.getMessage());
    }
  }

  /** Other fields may be anything, and Alpaca's optional input may be null (no input). */
  @Test
  void unreadFieldsAndANullAlpacaInputAreAccepted() throws IOException {
    SftDataset d =
        load(
            "a.jsonl",
            "{\"id\": 7, \"input\": \"hi\", \"target\": \"ok\", \"tags\": null}\n",
            Map.of(),
            64);
    assertEquals(1, d.size());
    SftDataset alpaca =
        load(
            "b.jsonl",
            "{\"instruction\": \"hi\", \"input\": null, \"output\": \"ok\"}\n",
            Map.of("format", "alpaca"),
            256);
    assertEquals(1, alpaca.size());
  }

  /** Issue 13 item 5: JSON Lines holds one value per line; a second one is not dropped. */
  @Test
  void contentAfterTheJsonValueOnALineIsAnError() {
    assertLoadFails(
        "t.jsonl",
        "{\"input\": \"a\", \"target\": \"b\"}\n{\"input\":\"A\",\"target\":\"B\"}{\"input\":\"C\",\"target\":\"D\"}\n",
        "t.jsonl:2: malformed JSON: more after the JSON value at column");
    assertLoadFails(
        "u.jsonl", "{\"input\": \"a\", \"target\": \"b\"} xyz\n", "u.jsonl:1: malformed JSON");
  }

  @Test
  void textFormatTrainsEverythingAndIsTruncated() throws IOException {
    SftDataset d =
        load(
            "t.json",
            "[{\"text\": \"abc\"},\n {\"text\": \"abcdefghij\"}]",
            Map.of("format", "text"),
            6);
    assertArrayEquals(new int[] {1, 100, 101, 102, 2}, d.get(0).ids());
    assertArrayEquals(d.get(0).ids(), d.get(0).labels());
    assertArrayEquals(new int[] {1, 100, 101, 102, 103, 104}, d.get(1).ids());
    assertEquals(1, d.stats().truncated());
    assertEquals(0, d.stats().dropped());
  }

  @Test
  void promptLongerThanBlockIsDroppedAndCounted() throws IOException {
    SftDataset d = load("p.csv", "input,target\nabcdefgh,x\nab,cd\n", Map.of(), 6);
    assertEquals(1, d.size());
    assertEquals(new SftDataset.Stats(2, 1, 1, 6, 3), d.stats());
    // the kept sample: BOS a b | c d EOS, exactly six tokens
    assertArrayEquals(new int[] {I, I, I, 102, 103, 2}, d.get(0).labels());
    // a sample cut inside its response keeps the response's first tokens trained
    SftDataset cut = load("c.csv", "input,target\nab,cdef\n", Map.of(), 5);
    assertArrayEquals(new int[] {1, 100, 101, 102, 103}, cut.get(0).ids());
    assertArrayEquals(new int[] {I, I, I, 102, 103}, cut.get(0).labels());
    assertEquals(1, cut.stats().truncated());
  }

  static int[] bytesOf(String s) {
    return s.chars().map(c -> c + 3).toArray();
  }

  static int[] cat(int[]... parts) {
    return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
  }

  static int[] ignore(int n) {
    int[] a = new int[n];
    Arrays.fill(a, I);
    return a;
  }

  @Test
  void chatTrainsAssistantTurnsOnly() throws IOException {
    String chat =
        "<s>Human: hi\\n</s><s>Assistant: yo\\n</s><s>Human: ok?\\n</s><s>Assistant: no\\n</s>";
    String line = "{\"text\": \"" + chat + "\"}\n";
    SftExample e = load("c.jsonl", line, Map.of("format", "chat"), 256).get(0);
    // each turn's text is encoded whole: the space after the colon starts the content
    int[] h1 = cat(new int[] {1}, bytesOf("Human:"), bytesOf(" hi\n"), new int[] {2});
    int[] a1h = cat(new int[] {1}, bytesOf("Assistant:"));
    int[] a1 = cat(bytesOf(" yo\n"), new int[] {2});
    int[] h2 = cat(new int[] {1}, bytesOf("Human:"), bytesOf(" ok?\n"), new int[] {2});
    int[] a2 = cat(bytesOf(" no\n"), new int[] {2});
    assertArrayEquals(cat(h1, a1h, a1, h2, a1h, a2), e.ids());
    assertArrayEquals(
        cat(ignore(h1.length + a1h.length), a1, ignore(h2.length + a1h.length), a2), e.labels());
    SftExample last =
        load("c2.jsonl", line, Map.of("format", "chat", "last_turn_only", true), 256).get(0);
    assertArrayEquals(
        cat(ignore(h1.length + a1h.length + a1.length + h2.length + a1h.length), a2),
        last.labels());
    DataException bad =
        assertThrows(
            DataException.class,
            () ->
                load(
                    "b.jsonl",
                    "{\"text\": \"<s>Human: hi\\n</s>\"}\n",
                    Map.of("format", "chat"),
                    256));
    assertTrue(bad.getMessage().contains("b.jsonl:1: no <s>Assistant"), bad.getMessage());
  }

  @Test
  void chatTruncationKeepsEarlierTurns() throws IOException {
    String line =
        "{\"text\": \"<s>Human: a</s><s>Assistant: bb</s><s>Human: c</s><s>Assistant: dd</s>\"}\n";
    // turn 1: 1 H u m a n : ␠ a 2 (10), header 1 A s s i s t a n t : (11), ␠ b b 2 (4) = 25
    SftDataset d = load("t.jsonl", line, Map.of("format", "chat"), 25);
    assertEquals(1, d.stats().truncated());
    SftExample e = d.get(0);
    assertEquals(25, e.length());
    assertArrayEquals(cat(ignore(21), new int[] {35, 101, 101, 2}), e.labels());
  }

  @Test
  void alpacaUsesTheTemplate() throws IOException {
    SftDataset d =
        load(
            "a.json",
            "[{\"instruction\": \"Add\", \"input\": \"1 2\", \"output\": \"3\"},"
                + " {\"instruction\": \"Hi\", \"input\": \"\", \"output\": \"Yo\"}]",
            Map.of("format", "alpaca"),
            1024);
    String p1 =
        SftOptions.ALPACA_TEMPLATE.replace("{instruction}", "Add").replace("{input}", "1 2");
    SftExample e = d.get(0);
    assertArrayEquals(cat(new int[] {1}, bytesOf(p1), bytesOf("3"), new int[] {2}), e.ids());
    assertArrayEquals(cat(ignore(1 + p1.length()), bytesOf("3"), new int[] {2}), e.labels());
    String p2 = SftOptions.ALPACA_TEMPLATE_NO_INPUT.replace("{instruction}", "Hi");
    assertEquals(1 + p2.length() + 3, d.get(1).length());
    SftDataset custom =
        load(
            "b.json",
            "[{\"instruction\": \"Add\", \"output\": \"3\"}]",
            Map.of("format", "alpaca", "prompt_template_no_input", "Q: {instruction}\nA: "),
            1024);
    assertArrayEquals(
        cat(new int[] {1}, bytesOf("Q: Add\nA: "), bytesOf("3"), new int[] {2}),
        custom.get(0).ids());
  }

  @Test
  void paddingRoundsUpToMultipleOfEightWithinMaxLength() {
    SftCollator c = new SftCollator(0, 8, 20);
    assertEquals(8, c.paddedLength(1));
    assertEquals(16, c.paddedLength(9));
    assertEquals(20, c.paddedLength(17)); // capped at the block size
    SftExample a = new SftExample(new int[] {1, 5, 6}, new int[] {I, 5, 6});
    SftExample b = new SftExample(IntStream.range(0, 9).toArray(), IntStream.range(0, 9).toArray());
    SftCollator.Arrays x = c.collate(List.of(a, b));
    assertEquals(16, x.length());
    assertEquals(2 + 8, x.trained());
    for (int j = 2; j < 16; j++) assertEquals(I, x.targets()[j]);
    for (int j = 8; j < 16; j++) assertEquals(I, x.targets()[16 + j]);
  }

  @Test
  void packingFillsRowsAndRestartsPositionsPerSample() {
    SftExample a = new SftExample(new int[] {1, 5, 6}, new int[] {I, 5, 6});
    SftExample b = new SftExample(new int[] {1, 7, 8, 9, 2}, new int[] {I, I, 8, 9, 2});
    SftExample c = new SftExample(new int[] {1, 4, 4, 4, 4, 4, 2}, new int[] {I, 4, 4, 4, 4, 4, 2});
    // capacity 10: a + b fill row 0 (8 tokens), c does not fit and opens row 1
    SftCollator.Arrays x = new SftCollator(0, 8, 10, true).batch(List.of(a, b, c));
    assertEquals(2, x.rows());
    assertEquals(8, x.length()); // the fullest row (8) rounded up to a multiple of 8
    assertArrayEquals(new long[] {1, 5, 6, 1, 7, 8, 9, 2, 1, 4, 4, 4, 4, 4, 2, 0}, x.inputs());
    // each sample's last target is -100: no prediction across the boundary
    assertArrayEquals(new long[] {5, 6, I, I, 8, 9, 2, I, 4, 4, 4, 4, 4, 2, I, I}, x.targets());
    assertArrayEquals(new long[] {0, 1, 2, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 0}, x.positions());
    assertArrayEquals(new long[] {0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1}, x.segments());
    assertEquals(2 + 3 + 6, x.trained());
    assertEquals(x.trained(), new SftCollator(0, 8, 10).collate(List.of(a, b, c)).trained());
  }

  static int[] lengths(int n) {
    return IntStream.range(0, n).map(i -> 1 + (i * 37) % 23).toArray();
  }

  @Test
  void orderIsSeededPerEpochAndResumesFromAnyCursor() {
    SftSampler s = new SftSampler(lengths(50), 4, 7, true, false);
    assertEquals(12, s.stepsPerEpoch());
    List<int[]> batches = new ArrayList<>();
    Cursor c = Cursor.START;
    for (int i = 0; i < 30; i++) {
      batches.add(s.batch(c));
      c = s.advance(c);
    }
    assertEquals(new Cursor(2, 24), c);
    Set<Integer> epoch0 = new HashSet<>();
    for (int i = 0; i < 12; i++) for (int x : batches.get(i)) epoch0.add(x);
    assertEquals(48, epoch0.size());
    assertNotEquals(Arrays.toString(batches.get(0)), Arrays.toString(batches.get(12)));
    // a fresh sampler from a saved cursor gives the same batches
    SftSampler again = new SftSampler(lengths(50), 4, 7, true, false);
    Cursor r = Cursor.START;
    for (int i = 0; i < 17; i++) r = again.advance(r);
    for (int i = 17; i < 30; i++) {
      assertArrayEquals(batches.get(i), again.batch(r));
      r = again.advance(r);
    }
    assertNotEquals(
        Arrays.toString(new SftSampler(lengths(50), 4, 8, true, false).batch(Cursor.START)),
        Arrays.toString(batches.get(0)));
  }

  @Test
  void groupByLengthSortsEachMegaBatchLongestFirst() {
    int[] len = lengths(1000);
    SftSampler s = new SftSampler(len, 4, 7, true, true);
    int[] o = s.order(0);
    assertEquals(1000, Arrays.stream(o).distinct().count());
    for (int i = 1; i < 200; i++) assertTrue(len[o[i - 1]] >= len[o[i]]);
    int[] o1 = s.order(1);
    assertNotEquals(Arrays.toString(o), Arrays.toString(o1));
  }

  @Test
  void loaderGivesDeviceBatchesWithTrainedCounts() throws IOException {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < 10; i++)
      b.append("{\"input\": \"q").append(i).append("\", \"target\": \"a").append(i).append("\"}\n");
    SftDataset d = load("l.jsonl", b.toString(), Map.of(), 64);
    try (SftLoader l =
        SftLoader.training(d, 3, 1, false, new SftCollator(0, 8, 64), Device.CPU, Cursor.START)) {
      assertEquals(3, l.stepsPerEpoch());
      try (LabelledBatch x = l.next()) {
        assertArrayEquals(new long[] {3, 8}, x.inputs().shape());
        assertEquals(9, x.trained()); // "aN" + EOS per sample
        assertEquals(new Cursor(0, 3), x.cursor());
      }
    }
  }
}
