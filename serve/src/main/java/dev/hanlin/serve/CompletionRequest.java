package dev.hanlin.serve;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * The fields of an OpenAI {@code /v1/chat/completions} or {@code /v1/completions} body that this
 * server honours, checked for type and range: each bad field is an {@link ApiError} naming it.
 * Fields it does not know (user, logit_bias, ...) are ignored, as OpenAI-compatible servers do.
 */
record CompletionRequest(
    String model,
    List<ChatTemplate.Turn> messages, // chat only
    String prompt, // completions only
    Integer maxTokens, // null: up to the context
    double temperature,
    double topP,
    List<String> stops,
    Long seed, // null: a random one
    boolean stream,
    boolean includeUsage,
    boolean ignoreEos) { // vLLM's extension: generate max_tokens whatever comes (for benchmarks)

  static CompletionRequest parse(JsonNode body, boolean chat) {
    if (body == null || !body.isObject())
      throw ApiError.invalid(null, "the request body must be a JSON object");
    String model = string(body, "model", true);
    List<ChatTemplate.Turn> messages = chat ? messages(body) : null;
    String prompt = chat ? null : prompt(body);
    Integer maxTokens = integer(body, "max_completion_tokens");
    if (maxTokens == null) maxTokens = integer(body, "max_tokens");
    if (maxTokens != null && maxTokens < 1)
      throw ApiError.invalid("max_tokens", "max_tokens must be at least 1, got " + maxTokens);
    if (maxTokens == null && !chat) maxTokens = 16; // OpenAI's default for completions
    double temperature = number(body, "temperature", 1.0);
    if (!(temperature >= 0 && temperature <= 2))
      throw ApiError.invalid("temperature", "temperature must be in [0, 2], got " + temperature);
    double topP = number(body, "top_p", 1.0);
    if (!(topP > 0 && topP <= 1))
      throw ApiError.invalid("top_p", "top_p must be in (0, 1], got " + topP);
    Integer n = integer(body, "n");
    if (n != null && n != 1) throw ApiError.invalid("n", "only n = 1 is supported, got " + n);
    JsonNode seedNode = present(body, "seed");
    Long seed = null;
    if (seedNode != null) {
      if (!seedNode.isIntegralNumber() || !seedNode.canConvertToLong())
        throw ApiError.invalid("seed", "seed must be an integer");
      seed = seedNode.asLong();
    }
    boolean stream = bool(body, "stream");
    JsonNode so = present(body, "stream_options");
    boolean includeUsage = false;
    if (so != null) {
      if (!so.isObject())
        throw ApiError.invalid("stream_options", "stream_options must be an object");
      includeUsage = bool(so, "include_usage");
    }
    return new CompletionRequest(
        model,
        messages,
        prompt,
        maxTokens,
        temperature,
        topP,
        stops(body),
        seed,
        stream,
        includeUsage,
        bool(body, "ignore_eos"));
  }

  private static List<ChatTemplate.Turn> messages(JsonNode body) {
    JsonNode m = present(body, "messages");
    if (m == null) throw ApiError.invalid("messages", "messages is required");
    if (!m.isArray() || m.isEmpty())
      throw ApiError.invalid("messages", "messages must be a non-empty array");
    List<ChatTemplate.Turn> turns = new ArrayList<>();
    for (int i = 0; i < m.size(); i++) {
      JsonNode msg = m.get(i);
      String where = "messages[" + i + "]";
      if (!msg.isObject()) throw ApiError.invalid(where, where + " must be an object");
      JsonNode roleNode = msg.get("role");
      if (roleNode == null || !roleNode.isTextual())
        throw ApiError.invalid(where + ".role", where + ".role must be a string");
      ChatTemplate.Role role =
          switch (roleNode.asText()) {
            case "system", "developer" -> ChatTemplate.Role.SYSTEM;
            case "user" -> ChatTemplate.Role.HUMAN;
            case "assistant" -> ChatTemplate.Role.ASSISTANT;
            default ->
                throw ApiError.invalid(
                    where + ".role",
                    "unsupported role '"
                        + roleNode.asText()
                        + "' (system, developer, user or assistant)");
          };
      turns.add(new ChatTemplate.Turn(role, content(msg.get("content"), where + ".content")));
    }
    if (turns.getLast().role() != ChatTemplate.Role.HUMAN)
      throw ApiError.invalid("messages", "the last message must be from the user");
    return turns;
  }

  /** A string, or an array of {"type":"text","text":...} parts. */
  private static String content(JsonNode c, String where) {
    if (c != null && c.isTextual()) return c.asText();
    if (c != null && c.isArray()) {
      StringBuilder sb = new StringBuilder();
      for (JsonNode part : c) {
        if (!part.isObject()
            || !"text".equals(part.path("type").asText())
            || !part.path("text").isTextual())
          throw ApiError.invalid(where, where + ": only text parts are supported");
        sb.append(part.get("text").asText());
      }
      return sb.toString();
    }
    throw ApiError.invalid(where, where + " must be a string or an array of text parts");
  }

  private static String prompt(JsonNode body) {
    JsonNode p = present(body, "prompt");
    if (p == null) throw ApiError.invalid("prompt", "prompt is required");
    if (p.isTextual()) return p.asText();
    if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) return p.get(0).asText();
    throw ApiError.invalid("prompt", "prompt must be a string (or a list of one string)");
  }

  private static List<String> stops(JsonNode body) {
    JsonNode s = present(body, "stop");
    if (s == null) return List.of();
    if (s.isTextual()) return List.of(s.asText());
    if (s.isArray() && s.size() <= 4) {
      List<String> out = new ArrayList<>();
      for (JsonNode x : s) {
        if (!x.isTextual()) throw ApiError.invalid("stop", "stop must hold strings only");
        out.add(x.asText());
      }
      return out;
    }
    throw ApiError.invalid("stop", "stop must be a string or a list of up to 4 strings");
  }

  /** The field, or null when absent or JSON null. */
  private static JsonNode present(JsonNode o, String name) {
    JsonNode n = o.get(name);
    return n == null || n.isNull() ? null : n;
  }

  private static String string(JsonNode o, String name, boolean required) {
    JsonNode n = present(o, name);
    if (n == null) {
      if (required) throw ApiError.invalid(name, name + " is required");
      return null;
    }
    if (!n.isTextual()) throw ApiError.invalid(name, name + " must be a string");
    return n.asText();
  }

  private static Integer integer(JsonNode o, String name) {
    JsonNode n = present(o, name);
    if (n == null) return null;
    if (!n.isIntegralNumber() || !n.canConvertToInt())
      throw ApiError.invalid(name, name + " must be an integer, got " + n);
    return n.asInt();
  }

  private static double number(JsonNode o, String name, double dflt) {
    JsonNode n = present(o, name);
    if (n == null) return dflt;
    if (!n.isNumber()) throw ApiError.invalid(name, name + " must be a number, got " + n);
    return n.asDouble();
  }

  private static boolean bool(JsonNode o, String name) {
    JsonNode n = present(o, name);
    if (n == null) return false;
    if (!n.isBoolean()) throw ApiError.invalid(name, name + " must be a boolean, got " + n);
    return n.asBoolean();
  }
}
