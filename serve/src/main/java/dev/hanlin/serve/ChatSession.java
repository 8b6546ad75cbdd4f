package dev.hanlin.serve;

import dev.hanlin.model.BatchEngine;
import dev.hanlin.model.GenerationOptions;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * A conversation in the terminal: reads the user's lines, prints each reply as its tokens arrive
 * (whole characters only, see {@link TextStream}), and keeps the turns for the next prompt. {@code
 * /reset} forgets them, {@code /exit} or the end of input quits. When a prompt would not fit the
 * context, the oldest turns are left out, and it says so.
 */
public final class ChatSession {
  private final BatchEngine engine;
  private final Tokenizer tok;
  private final ChatTemplate template;
  private final String system;
  private final GenerationOptions options;
  private final boolean showIds;
  private final List<ChatTemplate.Turn> history = new ArrayList<>();

  public ChatSession(
      BatchEngine engine,
      Tokenizer tok,
      String system,
      GenerationOptions options,
      boolean showIds) {
    this.engine = engine;
    this.tok = tok;
    this.template = new ChatTemplate(tok);
    this.system = system;
    this.options = options;
    this.showIds = showIds;
  }

  public void run(BufferedReader in, PrintStream out) throws IOException, InterruptedException {
    out.println("Chat started. /reset starts over, /exit quits.");
    int replies = 0;
    while (true) {
      out.print("Human: ");
      out.flush();
      String line = in.readLine();
      if (line == null || line.strip().equals("/exit")) break;
      if (line.strip().equals("/reset")) {
        history.clear();
        out.println("(conversation reset)");
        continue;
      }
      if (line.isBlank()) continue;
      history.add(new ChatTemplate.Turn(ChatTemplate.Role.HUMAN, line));
      List<ChatTemplate.Turn> turns = new ArrayList<>();
      if (system != null && !system.isBlank())
        turns.add(new ChatTemplate.Turn(ChatTemplate.Role.SYSTEM, system));
      turns.addAll(history);
      ChatTemplate.Prompt p;
      try {
        p = template.prompt(turns, engine.capacity(), options.maxNewTokens());
      } catch (IllegalArgumentException e) {
        history.removeLast();
        out.println("(message not sent: " + e.getMessage() + ")");
        continue;
      }
      if (p.droppedTurns() > 0) {
        history.subList(0, p.droppedTurns()).clear();
        out.println(
            "(context full: left out the "
                + p.droppedTurns()
                + " oldest turn(s) to fit "
                + engine.capacity()
                + " tokens)");
      }
      if (showIds) out.println("prompt ids: " + Arrays.toString(p.ids()));
      String reply = reply(p.ids(), options.seed() + replies++, out);
      history.add(new ChatTemplate.Turn(ChatTemplate.Role.ASSISTANT, reply));
    }
  }

  /** Generates and prints one reply; returns its text. */
  private String reply(int[] prompt, long seed, PrintStream out) throws InterruptedException {
    GenerationOptions o =
        new GenerationOptions(
            options.maxNewTokens(),
            options.temperature(),
            options.topK(),
            options.topP(),
            options.repetitionPenalty(),
            seed,
            options.eosTokenIds());
    LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
    engine.submit(
        prompt,
        o,
        new BatchEngine.Listener() {
          @Override
          public boolean onToken(int id) {
            events.add(id);
            return true;
          }

          @Override
          public void onDone(BatchEngine.Finish reason, String error) {
            events.add(error != null ? "error: " + error : reason);
          }
        });
    TextStream text = new TextStream(tok, List.of());
    StringBuilder all = new StringBuilder();
    out.print("Assistant: ");
    while (true) {
      Object e = events.take();
      if (e instanceof Integer id) {
        String piece = text.add(id);
        all.append(piece);
        out.print(piece);
        out.flush();
      } else {
        String tail = text.finish();
        all.append(tail);
        out.println(tail);
        if (e instanceof String err) out.println("(" + err + ")");
        else if (e == BatchEngine.Finish.LENGTH) out.println("(reply cut at max-new-tokens)");
        return all.toString();
      }
    }
  }
}
