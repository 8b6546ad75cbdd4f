package dev.hanlin.cli;

import dev.hanlin.model.BatchEngine;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.serve.OpenAiServer;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code --mode serve}: an OpenAI-compatible HTTP API with continuous batching. */
@Command(
    name = "serve",
    mixinStandardHelpOptions = true,
    description = {
      "Serve a model over an OpenAI-compatible HTTP API: POST /v1/chat/completions,",
      "POST /v1/completions (stream: true for server-sent events), GET /v1/models, GET /health.",
      "Concurrent requests share decode steps (continuous batching). SIGTERM stops cleanly."
    })
final class ServeCommand implements Callable<Integer> {
  @Mixin ServingModel model;

  @Option(names = "--port", required = true, description = "TCP port (0 = any free one).")
  int port;

  @Option(
      names = "--host",
      defaultValue = "127.0.0.1",
      description = "Address to bind (default ${DEFAULT-VALUE}; 0.0.0.0 for all).")
  String host;

  @Option(
      names = "--max-batch",
      defaultValue = "8",
      description =
          "Sequences decoded together, each with its own KV-cache slot (default ${DEFAULT-VALUE}).")
  int maxBatch;

  @Option(
      names = "--max-queue",
      defaultValue = "64",
      description = "Requests that may wait for a slot; more get 429 (default ${DEFAULT-VALUE}).")
  int maxQueue;

  @Option(
      names = "--context",
      description = "Positions per sequence, prompt plus reply (default: max_position_embeddings).")
  Integer context;

  @Option(
      names = "--served-model-name",
      description = "The model id clients send (default: the model folder's name).")
  String name;

  @Option(
      names = "--grace-seconds",
      defaultValue = "10",
      description = "On SIGTERM, how long running requests may finish (default ${DEFAULT-VALUE}).")
  int graceSeconds;

  @Override
  public Integer call() throws Exception {
    if (maxBatch < 1) throw new IllegalArgumentException("--max-batch must be >= 1");
    if (maxQueue < 0) throw new IllegalArgumentException("--max-queue must be >= 0");
    LlamaModel m = model.load();
    int ctx = context != null ? context : m.config().maxPositionEmbeddings();
    String served =
        name != null ? name : model.folder().toAbsolutePath().normalize().getFileName().toString();
    BatchEngine engine = new BatchEngine(m, maxBatch, ctx, maxQueue);
    OpenAiServer server = new OpenAiServer(engine, model.tokenizer(), served, host, port);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  System.err.println("serve: stopping (SIGTERM)");
                  server.stop(graceSeconds * 1000L);
                  System.err.println("serve: stopped");
                  stopped.countDown();
                }));
    System.out.printf(
        "serving %s on http://%s:%d (max batch %d, queue %d, context %d)%n",
        served, host, server.port(), maxBatch, maxQueue, ctx);
    System.out.flush();
    stopped.await();
    return 0;
  }
}
