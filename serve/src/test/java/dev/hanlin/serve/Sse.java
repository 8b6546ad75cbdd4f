package dev.hanlin.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;

/** A small HTTP client for the tests: JSON calls and server-sent event streams. */
final class Sse {
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP = HttpClient.newHttpClient();

  record Reply(int status, JsonNode body) {}

  /** What a stream delivered: the joined content, the finish reason, whether [DONE] came. */
  record Streamed(int status, String text, String finishReason, JsonNode usage, boolean done) {}

  static HttpRequest post(int port, String path, String body) {
    return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body))
        .build();
  }

  static Reply call(int port, String method, String path, String body) throws Exception {
    var b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path));
    b.method(
        method,
        body == null
            ? HttpRequest.BodyPublishers.noBody()
            : HttpRequest.BodyPublishers.ofString(body));
    HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    return new Reply(r.statusCode(), JSON.readTree(r.body()));
  }

  static Streamed stream(int port, String path, String body) throws Exception {
    HttpResponse<InputStream> r =
        HTTP.send(post(port, path, body), HttpResponse.BodyHandlers.ofInputStream());
    if (r.statusCode() != 200) {
      try (InputStream in = r.body()) {
        return new Streamed(r.statusCode(), new String(in.readAllBytes()), null, null, false);
      }
    }
    StringBuilder text = new StringBuilder();
    String finish = null;
    JsonNode usage = null;
    boolean done = false;
    try (BufferedReader in =
        new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
      for (String line; (line = in.readLine()) != null; ) {
        if (!line.startsWith("data: ")) continue;
        String data = line.substring(6);
        if (data.equals("[DONE]")) {
          done = true;
          continue;
        }
        JsonNode c = JSON.readTree(data);
        if (c.hasNonNull("usage")) usage = c.get("usage");
        for (JsonNode ch : c.path("choices")) {
          JsonNode piece = ch.has("delta") ? ch.path("delta").path("content") : ch.path("text");
          if (piece.isTextual()) text.append(piece.asText());
          if (ch.hasNonNull("finish_reason")) finish = ch.get("finish_reason").asText();
        }
      }
    } catch (IOException e) {
      // the server closed the stream early; the caller checks `done`
    }
    return new Streamed(200, text.toString(), finish, usage, done);
  }
}
