package dev.hanlin.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class GenerationTest {
  @Test
  void samplingIsSeededAndTopKOneIsGreedy() throws Exception {
    LlamaModel m = HfCheckpoint.load(TestData.dir("parity").resolve("gqa"), DType.F32, Device.CPU);
    int[] prompt = {5, 6, 7};
    var sample = new GenerationOptions(15, 1.0, 0, 0.9, 1.1, 123, List.of());
    int[] a = TextGeneration.generate(m, prompt, sample);
    int[] b = TextGeneration.generate(m, prompt, sample);
    assertArrayEquals(a, b, "same seed, same tokens");
    int[] c =
        TextGeneration.generate(
            m, prompt, new GenerationOptions(15, 1.0, 0, 0.9, 1.1, 124, List.of()));
    assertFalse(Arrays.equals(a, c), "another seed should change a 15-token random sample");
    int[] greedy = TextGeneration.generate(m, prompt, GenerationOptions.greedy(15, List.of()));
    int[] topk1 =
        TextGeneration.generate(m, prompt, new GenerationOptions(15, 0.7, 1, 1, 1, 9, List.of()));
    assertArrayEquals(greedy, topk1);
    assertEquals(18, greedy.length);
  }

  @Test
  void processorsFollowHf() {
    float[] logits = {2f, -2f, 1f, 0.5f};
    int[] ids = {0, 1};
    // repetition penalty 2: 2 -> 1 (divided), -2 -> -4 (multiplied); argmax becomes token 2 (1.0 vs
    // 1.0: first wins)
    var o = new GenerationOptions(1, 0, 0, 1, 2.0, 0, List.of());
    assertEquals(0, TextGeneration.pick(logits, ids, 2, o, new SplittableRandom(1)));
    var o3 = new GenerationOptions(1, 0, 0, 1, 4.0, 0, List.of());
    assertEquals(2, TextGeneration.pick(logits, ids, 2, o3, new SplittableRandom(1)));
    // top-p 0.5 keeps only the most likely token here (p(0) ~ 0.6)
    var nucleus = new GenerationOptions(1, 1.0, 0, 0.5, 1, 0, List.of());
    for (int s = 0; s < 50; s++)
      assertEquals(0, TextGeneration.pick(logits, ids, 0, nucleus, new SplittableRandom(s)));
    // top-k 2 never returns tokens outside the two best
    var topk = new GenerationOptions(1, 5.0, 2, 1, 1, 0, List.of());
    for (int s = 0; s < 200; s++) {
      int t = TextGeneration.pick(logits, ids, 0, topk, new SplittableRandom(s));
      assertTrue(t == 0 || t == 2, "got " + t);
    }
  }
}
