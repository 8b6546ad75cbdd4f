package dev.hanlin.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** One tokenizer shared by many threads gives each the ids it gives alone. */
class ConcurrencyTest {
  @Test
  void parallelEncodingMatchesSequential() {
    Tokenizer t = Assets.llama();
    List<Assets.Golden> g =
        Assets.readGoldens(Assets.root().resolve("tokenizer/edge_cases.golden.jsonl"));
    List<String> texts =
        IntStream.range(0, 20_000).mapToObj(i -> g.get(i % g.size()).text()).toList();
    int[][] expected = texts.stream().map(s -> t.encode(s, true, true)).toArray(int[][]::new);
    int[][] got = texts.parallelStream().map(s -> t.encode(s, true, true)).toArray(int[][]::new);
    for (int i = 0; i < texts.size(); i++) assertArrayEquals(expected[i], got[i], texts.get(i));
  }
}
