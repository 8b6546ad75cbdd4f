package dev.hanlin.serve;

import dev.hanlin.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * Llama2-Chinese's chat format, {@code <s>Human: …\n</s><s>Assistant: …\n</s>}, as token ids: the
 * one place that chat, {@code generate --chat} and the server's chat completions build prompts.
 * {@code <s>} and {@code </s>} are inserted as the BOS/EOS ids, never encoded as text, so a user
 * who types "&lt;/s&gt;" cannot end a turn. Each turn is encoded exactly as {@code SftDataset}
 * encodes the chat records a model is tuned on ({@code bos ++ encode("Human: " + content + "\n") ++
 * eos}, one text between the special tokens as HF's tokenizer encodes it), so inference sees the
 * ids training saw; the prompt ends with {@code bos ++ encode("Assistant:")} and the model writes
 * the reply and its {@code </s>}. A system prompt is a first turn of the same shape with the role
 * {@code System} (Llama2-Chinese defines none; this is the form its Atom successors use), and it is
 * never trimmed.
 */
public final class ChatTemplate {
  /** Who speaks a turn, with the label the template writes. */
  public enum Role {
    SYSTEM("System"),
    HUMAN("Human"),
    ASSISTANT("Assistant");

    final String label;

    Role(String label) {
      this.label = label;
    }
  }

  public record Turn(Role role, String content) {}

  /** A prompt's ids and how many of the oldest turns were left out to fit the context. */
  public record Prompt(int[] ids, int droppedTurns) {}

  private final Tokenizer tok;

  public ChatTemplate(Tokenizer tok) {
    this.tok = tok;
  }

  /** {@code <s>Role: content\n</s>} as ids. */
  public int[] turn(Turn t) {
    // one text between <s> and </s>, as SftDataset encodes a chat record's turn for training
    String text = t.role().label + ": " + t.content().stripLeading() + "\n";
    return concat(new int[] {tok.bosId()}, tok.encode(text, false, false), new int[] {tok.eosId()});
  }

  /** {@code <s>Assistant:}, after which the model answers. */
  public int[] assistantHeader() {
    return concat(new int[] {tok.bosId()}, tok.encode(Role.ASSISTANT.label + ":", false, false));
  }

  /**
   * The prompt for the model's next reply to {@code turns} (system turns first, then the dialogue
   * ending with a human turn), leaving out the oldest non-system turns while it and {@code reserve}
   * more tokens exceed {@code maxTokens}. Throws when even the last human turn alone does not fit.
   */
  public Prompt prompt(List<Turn> turns, int maxTokens, int reserve) {
    List<int[]> system = new ArrayList<>(), dialogue = new ArrayList<>();
    List<Role> roles = new ArrayList<>();
    for (Turn t : turns) {
      (t.role() == Role.SYSTEM ? system : dialogue).add(turn(t));
      if (t.role() != Role.SYSTEM) roles.add(t.role());
    }
    int[] header = assistantHeader();
    int total = header.length + reserve;
    for (int[] s : system) total += s.length;
    for (int[] d : dialogue) total += d.length;
    int dropped = 0;
    // drop the oldest turn, and an assistant turn left first without its question
    while (dialogue.size() > 1
        && (total > maxTokens || (dropped > 0 && roles.getFirst() == Role.ASSISTANT))) {
      total -= dialogue.removeFirst().length;
      roles.removeFirst();
      dropped++;
    }
    if (total > maxTokens)
      throw new IllegalArgumentException(
          "the prompt needs "
              + (total - reserve)
              + " tokens and "
              + reserve
              + " more are asked for, but the context holds "
              + maxTokens);
    List<int[]> parts = new ArrayList<>(system);
    parts.addAll(dialogue);
    parts.add(header);
    return new Prompt(concat(parts.toArray(int[][]::new)), dropped);
  }

  static int[] concat(int[]... parts) {
    int n = 0;
    for (int[] p : parts) n += p.length;
    int[] r = new int[n];
    int at = 0;
    for (int[] p : parts) {
      System.arraycopy(p, 0, r, at, p.length);
      at += p.length;
    }
    return r;
  }
}
