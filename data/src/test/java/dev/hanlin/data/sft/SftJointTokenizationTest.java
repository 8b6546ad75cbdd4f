package dev.hanlin.data.sft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hanlin.data.Fixtures;
import dev.hanlin.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * prompt_response records are encoded as one text and masked by character offset, checked against
 * python3-sentencepiece's ids and piece offsets of the joint text ({@code
 * test-data/sft/joint.golden.jsonl}, made by {@code make_joint_goldens.py}) with the real Llama 2
 * tokenizer and the demo's; text records with Llama2-Chinese's literal {@code <s>}/{@code </s>}
 * markers read as HF's Llama tokenizer reads them.
 */
class SftJointTokenizationTest {
  static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  static int[] ints(JsonNode a) {
    return StreamSupport.stream(a.spliterator(), false).mapToInt(JsonNode::asInt).toArray();
  }

  @Test
  void idsAndLabelsAreSentencePiecesOfTheJointText() throws Exception {
    Path repo = Fixtures.testData().getParent();
    Fixtures.llamaTokenizer(); // fails naming setup.sh when the real tokenizer is missing
    Map<String, Tokenizer> toks = new HashMap<>();
    int cases = 0, differFromSeparate = 0, texts = 0, plain = 0;
    for (String line : Files.readAllLines(repo.resolve("test-data/sft/joint.golden.jsonl"))) {
      if (line.startsWith("#")) continue;
      JsonNode g = JSON.readTree(line);
      Tokenizer tok =
          toks.computeIfAbsent(g.get("tokenizer").asText(), p -> Tokenizer.load(repo.resolve(p)));
      if (g.has("text")) { // format text: Llama2-Chinese's <s>/</s> markers, every token trained
        Path f = tmp.resolve("t" + texts++ + ".jsonl");
        Files.writeString(
            f, JSON.writeValueAsString(Map.of("text", g.get("text").asText())) + "\n");
        SftOptions text = SftOptions.DEFAULT.withFormat("text");
        SftExample x = SftDataset.load(List.of(f), tok, text, 4096).get(0);
        assertArrayEquals(ints(g.get("ids")), x.ids(), g.get("text").asText());
        assertArrayEquals(x.ids(), x.labels());
        continue;
      }
      String prompt = g.get("prompt").asText(), response = g.get("response").asText();
      String where =
          g.get("tokenizer").asText() + " " + JSON.writeValueAsString(List.of(prompt, response));

      if (!(prompt + response).contains("<s>") && !(prompt + response).contains("</s>")) {
        // the tokenizer's own offsets (marked texts are split before they reach it)
        Tokenizer.Encoding e = tok.encodeWithOffsets(prompt + response, true, true);
        assertArrayEquals(ints(g.get("ids")), e.ids(), where);
        assertArrayEquals(ints(g.get("starts")), e.starts(), where);
        plain++;
      }

      Path f = tmp.resolve("r" + cases + ".jsonl");
      Files.writeString(
          f, JSON.writeValueAsString(Map.of("input", prompt, "target", response)) + "\n");
      SftExample x = SftDataset.load(List.of(f), tok, SftOptions.DEFAULT, 4096).get(0);
      assertArrayEquals(ints(g.get("ids")), x.ids(), where);
      assertArrayEquals(ints(g.get("labels")), x.labels(), where);
      if (!java.util.Arrays.equals(ints(g.get("separate")), x.ids())) differFromSeparate++;
      cases++;
    }
    assertEquals(20, cases);
    assertEquals(8, texts);
    assertEquals(18, plain);
    // most cases tokenize differently when prompt and response are encoded apart (the old way)
    assertTrue(differFromSeparate >= 12, differFromSeparate + " of " + cases);
  }
}
