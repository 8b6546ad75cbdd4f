package dev.hanlin.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hanlin.model.GenerationOptions;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.model.TextGeneration;
import dev.hanlin.serve.ChatTemplate;
import dev.hanlin.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code --mode generate}: text from an HF model folder. */
@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description = "Generate from an HF model folder with a KV cache (greedy at temperature 0).")
final class GenerateCommand implements Callable<Integer> {
  @Mixin ServingModel model;

  @ArgGroup(exclusive = true, multiplicity = "1")
  Prompt prompt;

  static final class Prompt {
    @Option(names = "--prompt", description = "Prompt text (needs a tokenizer).")
    String text;

    @Option(names = "--prompt-ids", split = ",", description = "Prompt token ids, e.g. 1,2,3.")
    int[] ids;
  }

  @Option(
      names = "--max-new-tokens",
      defaultValue = "64",
      description = "Tokens to generate (default ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(
      names = "--temperature",
      defaultValue = "0",
      description = "0 = greedy (default ${DEFAULT-VALUE}).")
  double temperature;

  @Option(
      names = "--top-k",
      defaultValue = "0",
      description = "Keep the k most likely tokens; 0 = off.")
  int topK;

  @Option(names = "--top-p", defaultValue = "1.0", description = "Nucleus mass to keep; 1 = off.")
  double topP;

  @Option(
      names = "--repetition-penalty",
      defaultValue = "1.0",
      description = "HF's repetition penalty; 1 = off.")
  double repetitionPenalty;

  @Option(
      names = "--seed",
      defaultValue = "0",
      description = "Sampling seed (default ${DEFAULT-VALUE}).")
  long seed;

  @Option(
      names = "--chat",
      description = "Wrap --prompt in the chat template (<s>Human: ...\\n</s><s>Assistant:).")
  boolean chat;

  @Option(
      names = "--json",
      description = "Print {\"prompt_ids\":[...],\"output_ids\":[...],\"text\":...}.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    Tokenizer tok = model.tokenizer(prompt.text != null);
    if (chat && prompt.text == null) throw new IllegalArgumentException("--chat needs --prompt");
    int[] promptIds =
        prompt.ids != null
            ? prompt.ids
            : chat
                ? new ChatTemplate(tok)
                    .prompt(
                        List.of(new ChatTemplate.Turn(ChatTemplate.Role.HUMAN, prompt.text)),
                        Integer.MAX_VALUE,
                        0)
                    .ids()
                : tok.encode(prompt.text, true, false);
    LlamaModel m = model.load();
    var options =
        new GenerationOptions(
            maxNewTokens,
            temperature,
            topK,
            topP,
            repetitionPenalty,
            seed,
            m.config().eosTokenIds());
    int[] all = TextGeneration.generate(m, promptIds, options);
    int[] out = Arrays.copyOfRange(all, promptIds.length, all.length);
    String text = tok == null ? null : tok.decode(out);
    if (json) {
      ObjectNode n = new ObjectMapper().createObjectNode();
      Arrays.stream(promptIds).forEach(n.putArray("prompt_ids")::add);
      Arrays.stream(out).forEach(n.putArray("output_ids")::add);
      if (text == null) n.putNull("text");
      else n.put("text", text);
      System.out.println(n);
    } else {
      System.out.println(text != null ? text : Arrays.toString(out));
    }
    return 0;
  }
}
