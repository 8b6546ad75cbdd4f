package dev.hanlin.cli;

import dev.hanlin.model.BatchEngine;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.serve.ChatSession;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code --mode chat}: a multi-turn conversation in the terminal, replies printed as generated. */
@Command(
    name = "chat",
    mixinStandardHelpOptions = true,
    description = {
      "Talk to a model in the terminal with Llama2-Chinese's chat template.",
      "/reset starts a new conversation, /exit (or end of input) quits."
    })
final class ChatCommand implements Callable<Integer> {
  @Mixin ServingModel model;
  @Mixin Sampling sampling;

  @Option(names = "--system", description = "A system prompt, kept at the start of every prompt.")
  String system;

  @Option(names = "--show-ids", description = "Print each prompt's token ids (for debugging).")
  boolean showIds;

  @Override
  public Integer call() throws Exception {
    LlamaModel m = model.load();
    var options = sampling.options(m.config().eosTokenIds());
    var out =
        new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    var in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    try (BatchEngine engine = new BatchEngine(m, 1, m.config().maxPositionEmbeddings(), 0)) {
      new ChatSession(engine, model.tokenizer(), system, options, showIds).run(in, out);
    }
    return 0;
  }
}
