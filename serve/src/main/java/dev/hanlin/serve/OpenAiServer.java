package dev.hanlin.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.hanlin.model.BatchEngine;
import dev.hanlin.model.GenerationOptions;
import dev.hanlin.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;

/**
 * An OpenAI-compatible HTTP API over a {@link BatchEngine}: {@code POST /v1/chat/completions},
 * {@code POST /v1/completions} (JSON, or server-sent events with {@code stream: true}), {@code GET
 * /v1/models} and {@code GET /health}.
 *
 * <p>HTTP is the JDK's {@code com.sun.net.httpserver.HttpServer} with one virtual thread per
 * exchange: no new dependency, and a blocking handler per request is cheap on virtual threads.
 * Streaming needs nothing more than a chunked response flushed per event, and a client that goes
 * away shows as an {@link IOException} on the next write, which cancels the request and frees its
 * slot. (A non-streaming request whose client leaves runs to its end: nothing is written before.)
 *
 * <p>Every handler turns failures into OpenAI's error JSON {@code {"error": {"message", "type",
 * "param", "code"}}}: 400 for bad requests, 429 when the queue is full, 503 while shutting down,
 * 500 (message only) for anything unexpected; never a stack trace.
 */
public final class OpenAiServer {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final BatchEngine engine;
  private final Tokenizer tok;
  private final ChatTemplate template;
  private final String modelName;
  private final HttpServer http;
  private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
  private final long created = System.currentTimeMillis() / 1000;
  private volatile boolean stopping;

  /** Binds {@code host:port} (port 0 picks a free one) and starts serving. */
  public OpenAiServer(BatchEngine engine, Tokenizer tok, String modelName, String host, int port)
      throws IOException {
    this.engine = engine;
    this.tok = tok;
    this.template = new ChatTemplate(tok);
    this.modelName = modelName;
    this.http = HttpServer.create(new InetSocketAddress(host, port), 128);
    http.setExecutor(executor);
    http.createContext("/v1/chat/completions", ex -> handle(ex, "POST", () -> complete(ex, true)));
    http.createContext("/v1/completions", ex -> handle(ex, "POST", () -> complete(ex, false)));
    http.createContext("/v1/models", ex -> handle(ex, "GET", () -> models(ex)));
    http.createContext("/health", ex -> handle(ex, "GET", () -> health(ex)));
    http.createContext(
        "/",
        ex ->
            handle(
                ex,
                null,
                () -> {
                  throw new ApiError(
                      404,
                      "invalid_request_error",
                      null,
                      "not_found",
                      "no route " + ex.getRequestMethod() + " " + ex.getRequestURI().getPath());
                }));
    http.start();
  }

  /** The bound port. */
  public int port() {
    return http.getAddress().getPort();
  }

  /**
   * Stops: new requests get 503, waiting ones are aborted, running ones get {@code graceMillis} to
   * finish (then end with {@code finish_reason} null), and the socket closes.
   */
  public void stop(long graceMillis) {
    stopping = true;
    engine.shutdown(graceMillis);
    http.stop(1);
    executor.shutdown();
  }

  private interface Action {
    void run() throws IOException;
  }

  private void handle(HttpExchange ex, String method, Action action) {
    try (ex) {
      try {
        // a context matches every path it prefixes; only the exact path is an endpoint
        String path = ex.getRequestURI().getPath();
        if (method != null && !path.equals(ex.getHttpContext().getPath()))
          throw new ApiError(404, "invalid_request_error", null, "not_found", "no route " + path);
        if (method != null && !method.equals(ex.getRequestMethod()))
          throw new ApiError(
              405,
              "invalid_request_error",
              null,
              "method_not_allowed",
              ex.getRequestURI().getPath() + " takes " + method + ", not " + ex.getRequestMethod());
        action.run();
      } catch (ApiError e) {
        sendError(ex, e);
      } catch (IOException e) {
        // the client went away; nothing to tell it
      } catch (RuntimeException e) {
        sendError(
            ex,
            new ApiError(
                500,
                "server_error",
                null,
                null,
                e.getClass().getSimpleName() + ": " + e.getMessage()));
      }
    } catch (IOException ignored) {
      // closing a connection the client already closed
    }
  }

  private void sendError(HttpExchange ex, ApiError e) throws IOException {
    ObjectNode err = JSON.createObjectNode();
    ObjectNode o = err.putObject("error");
    o.put("message", e.getMessage());
    o.put("type", e.type);
    o.put("param", e.param);
    o.put("code", e.code);
    sendJson(ex, e.status, err);
  }

  private static void sendJson(HttpExchange ex, int status, JsonNode body) throws IOException {
    byte[] b = JSON.writeValueAsBytes(body);
    ex.getResponseHeaders().set("Content-Type", "application/json");
    ex.sendResponseHeaders(status, b.length);
    try (OutputStream os = ex.getResponseBody()) {
      os.write(b);
    }
  }

  private void models(HttpExchange ex) throws IOException {
    ObjectNode r = JSON.createObjectNode();
    r.put("object", "list");
    ObjectNode m = r.putArray("data").addObject();
    m.put("id", modelName);
    m.put("object", "model");
    m.put("created", created);
    m.put("owned_by", "hanlin");
    sendJson(ex, 200, r);
  }

  private void health(HttpExchange ex) throws IOException {
    int[] load = engine.load();
    long[] c = engine.counters();
    ObjectNode r = JSON.createObjectNode();
    r.put("status", stopping ? "stopping" : "ok");
    r.put("model", modelName);
    r.put("active", load[0]);
    r.put("queued", load[1]);
    r.put("max_batch", engine.maxBatch());
    r.put("context_length", engine.capacity());
    r.put("decode_steps", c[0]);
    r.put("generated_tokens", c[1]);
    sendJson(ex, stopping ? 503 : 200, r);
  }

  /** What the engine thread hands the request's handler thread. */
  private sealed interface Event {}

  private record Token(int id) implements Event {}

  private record Done(BatchEngine.Finish reason, String error) implements Event {}

  private void complete(HttpExchange ex, boolean chat) throws IOException {
    if (stopping)
      throw new ApiError(503, "server_error", null, "shutting_down", "the server is shutting down");
    JsonNode body;
    try (InputStream in = ex.getRequestBody()) {
      body = JSON.readTree(in);
    } catch (JsonProcessingException e) {
      throw ApiError.invalid(null, "malformed JSON: " + e.getOriginalMessage());
    }
    CompletionRequest req = CompletionRequest.parse(body, chat);
    if (!req.model().equals(modelName))
      throw new ApiError(
          400,
          "invalid_request_error",
          "model",
          "model_not_found",
          "the model '" + req.model() + "' does not exist; this server serves '" + modelName + "'");
    int capacity = engine.capacity();
    int[] prompt;
    if (chat) {
      int reserve = req.maxTokens() == null ? 1 : req.maxTokens();
      try {
        prompt = template.prompt(req.messages(), capacity, reserve).ids();
      } catch (IllegalArgumentException e) {
        throw ApiError.invalid(req.maxTokens() == null ? "messages" : "max_tokens", e.getMessage());
      }
    } else {
      prompt = tok.encode(req.prompt(), true, false);
    }
    int maxTokens = req.maxTokens() == null ? capacity - prompt.length : req.maxTokens();
    if (prompt.length + maxTokens > capacity)
      throw ApiError.invalid(
          "max_tokens",
          "the prompt's "
              + prompt.length
              + " tokens plus max_tokens "
              + maxTokens
              + " exceed the model's context length "
              + capacity);
    long seed = req.seed() != null ? req.seed() : ThreadLocalRandom.current().nextLong();
    var options =
        new GenerationOptions(
            maxTokens,
            req.temperature(),
            0,
            req.topP(),
            1.0,
            seed,
            req.ignoreEos() ? List.of() : engine.model().config().eosTokenIds());
    TextStream text = new TextStream(tok, req.stops());
    LinkedBlockingQueue<Event> events = new LinkedBlockingQueue<>();
    BatchEngine.Handle h;
    try {
      h =
          engine.submit(
              prompt,
              options,
              new BatchEngine.Listener() {
                @Override
                public boolean onToken(int id) {
                  events.add(new Token(id));
                  return true;
                }

                @Override
                public void onDone(BatchEngine.Finish reason, String error) {
                  events.add(new Done(reason, error));
                }
              });
    } catch (BatchEngine.QueueFullException e) {
      throw new ApiError(
          429, "requests", null, "rate_limit_exceeded", e.getMessage() + "; retry later");
    } catch (IllegalStateException e) {
      throw new ApiError(503, "server_error", null, "shutting_down", e.getMessage());
    } catch (IllegalArgumentException e) {
      throw ApiError.invalid(null, e.getMessage());
    }
    Reply reply = new Reply(ex, chat, req, prompt.length);
    try {
      int generated = 0;
      boolean eosOrDone = false;
      StringBuilder all = new StringBuilder();
      if (req.stream()) reply.startStream();
      while (true) {
        Event e = events.take();
        if (e instanceof Token t) {
          generated++;
          String piece = text.add(t.id());
          all.append(piece);
          if (req.stream() && !piece.isEmpty()) reply.chunk(piece, null);
          if (text.stopped()) {
            h.cancel(); // a stop string: no more tokens are needed
            reply.finish(all, generated, "stop");
            return;
          }
        } else if (e instanceof Done d) {
          String tail = text.finish();
          all.append(tail);
          if (req.stream() && !tail.isEmpty()) reply.chunk(tail, null);
          if (d.reason() == BatchEngine.Finish.ERROR) {
            ApiError err = new ApiError(500, "server_error", null, null, d.error());
            if (!req.stream()) throw err;
            reply.streamError(err); // the status line is sent already
            return;
          }
          // an end-of-sequence token is generated (and counted) but never shown
          if (d.reason() == BatchEngine.Finish.STOP) generated++;
          String reason =
              switch (d.reason()) {
                case STOP -> "stop";
                case LENGTH -> "length";
                default -> null; // aborted by shutdown
              };
          reply.finish(all, generated, reason);
          return;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      h.cancel(); // frees the slot if the client went away (a failed write) or anything failed
    }
  }

  /** Writes one completion, whole or as server-sent events. */
  private final class Reply {
    final HttpExchange ex;
    final boolean chat;
    final CompletionRequest req;
    final int promptTokens;
    final String id;
    final long createdAt = System.currentTimeMillis() / 1000;
    OutputStream out;

    Reply(HttpExchange ex, boolean chat, CompletionRequest req, int promptTokens) {
      this.ex = ex;
      this.chat = chat;
      this.req = req;
      this.promptTokens = promptTokens;
      this.id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
    }

    ObjectNode base(boolean chunk) {
      ObjectNode r = JSON.createObjectNode();
      r.put("id", id);
      r.put(
          "object",
          chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
      r.put("created", createdAt);
      r.put("model", modelName);
      r.put("system_fingerprint", (String) null);
      return r;
    }

    void startStream() throws IOException {
      ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
      ex.getResponseHeaders().set("Cache-Control", "no-cache");
      ex.sendResponseHeaders(200, 0); // chunked
      out = ex.getResponseBody();
      if (chat) {
        ObjectNode r = base(true);
        ObjectNode c = r.putArray("choices").addObject();
        c.put("index", 0);
        ObjectNode delta = c.putObject("delta");
        delta.put("role", "assistant");
        delta.put("content", "");
        c.putNull("logprobs");
        c.putNull("finish_reason");
        event(r);
      }
    }

    void chunk(String text, String finish) throws IOException {
      ObjectNode r = base(true);
      ObjectNode c = r.putArray("choices").addObject();
      c.put("index", 0);
      if (chat) {
        ObjectNode delta = c.putObject("delta");
        if (text != null) delta.put("content", text);
      } else {
        c.put("text", text == null ? "" : text);
      }
      c.putNull("logprobs");
      c.put("finish_reason", finish);
      event(r);
    }

    ObjectNode usage(int completionTokens) {
      ObjectNode u = JSON.createObjectNode();
      u.put("prompt_tokens", promptTokens);
      u.put("completion_tokens", completionTokens);
      u.put("total_tokens", promptTokens + completionTokens);
      return u;
    }

    void finish(StringBuilder all, int completionTokens, String reason) throws IOException {
      if (req.stream()) {
        chunk(null, reason);
        if (req.includeUsage()) {
          ObjectNode r = base(true);
          r.putArray("choices");
          r.set("usage", usage(completionTokens));
          event(r);
        }
        out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
        out.flush();
        out.close();
        return;
      }
      ObjectNode r = base(false);
      ArrayNode choices = r.putArray("choices");
      ObjectNode c = choices.addObject();
      c.put("index", 0);
      if (chat) {
        ObjectNode m = c.putObject("message");
        m.put("role", "assistant");
        m.put("content", all.toString());
      } else {
        c.put("text", all.toString());
      }
      c.putNull("logprobs");
      c.put("finish_reason", reason);
      r.set("usage", usage(completionTokens));
      sendJson(ex, 200, r);
    }

    void streamError(ApiError e) throws IOException {
      ObjectNode r = JSON.createObjectNode();
      ObjectNode o = r.putObject("error");
      o.put("message", e.getMessage());
      o.put("type", e.type);
      o.putNull("param");
      o.putNull("code");
      event(r);
      out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
      out.close();
    }

    private void event(JsonNode r) throws IOException {
      out.write(("data: " + JSON.writeValueAsString(r) + "\n\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
    }
  }

  /** The tokens of {@code text} as the server encodes a completion prompt. */
  public int[] encodeCompletionPrompt(String text) {
    return tok.encode(text, true, false);
  }

  /** The ids of a chat prompt as the server builds it. */
  public int[] chatPrompt(List<ChatTemplate.Turn> turns, int reserve) {
    return template.prompt(turns, engine.capacity(), reserve).ids();
  }
}
