package dev.hanlin.config;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * YAML onto records, strictly: an unknown key, a duplicate key, or a wrong type is an error that
 * names the key, the file and line, and for an unknown key the closest valid one.
 */
public final class StrictYaml {
  private StrictYaml() {}

  static final ObjectMapper YAML =
      new ObjectMapper(new YAMLFactory())
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
          .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
          .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
          // 80.5 for a step count is a mistake, not a request to truncate
          .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT);

  /**
   * Reads {@code file} (may be null: only the overrides) onto {@code type}, then applies {@code
   * overrides} on top: YAML key to value, from command-line flags. A dotted key ({@code lora.r})
   * sets a key of a section, creating the section if the file has none; a null value removes the
   * key, so its default applies.
   */
  public static <T> T read(Path file, Class<T> type, Map<String, Object> overrides) {
    ObjectNode tree = YAML.createObjectNode();
    String where = "command-line flags";
    if (file != null) {
      byte[] bytes = bytes(file);
      try {
        T base = YAML.readValue(bytes, type);
        if (base == null) throw new ConfigException("config " + file + " is empty", null);
        if (overrides.isEmpty()) return base;
      } catch (JsonProcessingException e) {
        // the record's own checks (a required key, a range) may be met by the flags: the file's
        // keys are all known and well typed, so merge the flags into its tree and check again
        if (e instanceof ValueInstantiationException) rejectUnknownKeys(file, bytes, type);
        if (overrides.isEmpty() || !(e instanceof ValueInstantiationException))
          throw explain(file.toString(), e, lineOfKey(file, e));
        where = file + " with the command-line flags";
      } catch (IOException e) {
        throw new ConfigException("cannot read config " + file + ": " + e.getMessage(), e);
      }
      // the file's own tree, not the record built from it: the record holds derived defaults
      // (an eval batch size copied from the train batch size) that a flag must not be merged onto
      try {
        tree = (ObjectNode) YAML.readTree(bytes);
      } catch (IOException | ClassCastException e) {
        throw new ConfigException("config " + file + " is not a mapping of keys", e);
      }
      removeNulls(tree);
    }
    for (var e : overrides.entrySet()) set(tree, e.getKey(), e.getValue());
    try {
      return YAML.treeToValue(tree, type);
    } catch (JsonProcessingException e) {
      // a key the flags did not set is the file's: point at its line there
      int line = -1;
      String key = keyOf(e);
      if (file != null && key != null && !overrides.containsKey(key))
        line = lineOf(file, List.of(key.split("\\.")));
      throw explain(line > 0 ? file.toString() : where, e, line);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(e.getMessage(), e);
    }
  }

  private static byte[] bytes(Path file) {
    try {
      return Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new ConfigException(
          "config " + file + ": no such file" + (file.isAbsolute() ? "" : inWorkingDir()), e);
    } catch (IOException e) {
      throw new ConfigException("cannot read config " + file + ": " + e.getMessage(), e);
    }
  }

  private static String inWorkingDir() {
    return " (relative to the working directory " + Path.of("").toAbsolutePath() + ")";
  }

  /**
   * Sets {@code key} (dotted for a key of a section) in {@code tree}; null removes it, a mapping
   * merges into the section.
   */
  private static void set(ObjectNode tree, String key, Object value) {
    String[] parts = key.split("\\.");
    ObjectNode node = tree;
    for (int i = 0; i < parts.length - 1; i++) {
      JsonNode child = node.get(parts[i]);
      if (child == null || child.isNull()) {
        if (value == null) return; // removing a key of a section that is not there
        child = node.putObject(parts[i]);
      } else if (!(child instanceof ObjectNode)) {
        throw new ConfigException(
            "cannot set '"
                + key
                + "': '"
                + String.join(".", List.of(parts).subList(0, i + 1))
                + "' is not a section",
            null);
      }
      node = (ObjectNode) child;
    }
    put(node, parts[parts.length - 1], value);
  }

  /** A mapping merges into a section already there (so {@code sft: {}} keeps the file's keys). */
  private static void put(ObjectNode node, String key, Object value) {
    if (value == null) node.remove(key);
    else if (value instanceof Map<?, ?> m && node.get(key) instanceof ObjectNode section)
      for (var e : m.entrySet()) put(section, String.valueOf(e.getKey()), e.getValue());
    else node.set(key, YAML.valueToTree(value));
  }

  /**
   * The key an error is about: Jackson's path, or for a failed check in a record's constructor (no
   * path) the key its message opens with, as every check here words it ({@code 'max_steps' must be
   * > 0}).
   */
  private static String keyOf(JsonProcessingException e) {
    List<String> path = new ArrayList<>();
    if (e instanceof JsonMappingException m)
      for (JsonMappingException.Reference r : m.getPath()) {
        if (r.getFieldName() == null) break;
        path.add(r.getFieldName());
      }
    Throwable cause = e.getCause();
    if (cause instanceof IllegalArgumentException iae && iae.getMessage() != null) {
      Matcher k = QUOTED_KEY.matcher(iae.getMessage());
      if (k.lookingAt()) path.add(k.group(1));
    }
    return path.isEmpty() ? null : String.join(".", path);
  }

  private static final Pattern QUOTED_KEY = Pattern.compile("(?:lora )?'([a-z_0-9]+)'");

  /**
   * The line of the key an error is about. Jackson reports where the parser stood, which for
   * records (built once every key is read) is the end of the mapping, so the key is found again.
   */
  private static int lineOfKey(Path file, JsonProcessingException e) {
    if (e instanceof JsonMappingException m)
      for (JsonMappingException.Reference r : m.getPath())
        if (r.getFieldName() == null) return -1; // list elements: keep Jackson's location
    String key = keyOf(e);
    // -1 for a key the file lacks (a required one): then Jackson's location, the mapping's end
    return key == null ? -1 : lineOf(file, List.of(key.split("\\.")));
  }

  /** The line of the key at {@code path} (nested field names) in {@code file}, or -1. */
  private static int lineOf(Path file, List<String> path) {
    try (JsonParser p = YAML.getFactory().createParser(file.toFile())) {
      List<String> stack = new ArrayList<>();
      for (JsonToken t; (t = p.nextToken()) != null; ) {
        if (t == JsonToken.FIELD_NAME) {
          while (stack.size() > p.getParsingContext().getNestingDepth() - 1) stack.removeLast();
          stack.add(p.currentName());
          if (stack.equals(path)) return p.currentTokenLocation().getLineNr();
        }
      }
    } catch (IOException ignored) {
      // fall back to Jackson's location
    }
    return -1;
  }

  /**
   * Jackson builds a record once all its keys are read, and a failed check in its constructor (a
   * required key missing, say because its name has a typo) hides an unknown key: this finds the
   * unknown top-level key first, with its line and the closest valid name.
   */
  private static void rejectUnknownKeys(Path file, byte[] bytes, Class<?> type) {
    JsonNode n;
    try {
      n = YAML.readTree(bytes);
    } catch (IOException e) {
      return; // the mapping's own error is reported instead
    }
    if (!(n instanceof ObjectNode o)) return;
    List<Object> known = new ArrayList<>();
    YAML.getDeserializationConfig()
        .introspect(YAML.constructType(type))
        .findProperties()
        .forEach(p -> known.add(p.getName()));
    for (String key : (Iterable<String>) o::fieldNames) {
      if (known.contains(key)) continue;
      int line = lineOf(file, List.of(key));
      throw new ConfigException(unknownKey(file + (line > 0 ? ":" + line : ""), key, known), null);
    }
  }

  /** "{@code at}: unknown key 'x' (did you mean 'y'?); valid keys: ...". */
  private static String unknownKey(String at, String key, Collection<Object> known) {
    String near = closest(key, known);
    return at
        + ": unknown key '"
        + key
        + "'"
        + (near == null ? "" : " (did you mean '" + near + "'?)")
        + "; valid keys: "
        + known.stream().map(String::valueOf).sorted().collect(Collectors.joining(", "));
  }

  private static void removeNulls(ObjectNode tree) {
    tree.properties().removeIf(en -> en.getValue().isNull());
  }

  static ConfigException explain(String where, JsonProcessingException e, int keyLine) {
    JsonLocation loc = e.getLocation();
    int line = keyLine > 0 ? keyLine : loc != null ? loc.getLineNr() : -1;
    // a syntax error: SnakeYAML knows the offending line (a tab used as indentation, say), where
    // Jackson's location is the end of the last good token, often a line earlier
    for (Throwable t = e; t != null; t = t.getCause())
      if (t instanceof org.yaml.snakeyaml.error.MarkedYAMLException y && y.getProblemMark() != null)
        line = y.getProblemMark().getLine() + 1;
    String at = where + (line > 0 ? ":" + line : "");
    if (e instanceof UnrecognizedPropertyException u)
      return new ConfigException(unknownKey(at, u.getPropertyName(), u.getKnownPropertyIds()), e);
    if (e instanceof JsonMappingException m && !m.getPath().isEmpty()) {
      String key =
          m.getPath().stream()
              .map(r -> r.getFieldName() != null ? r.getFieldName() : "[" + r.getIndex() + "]")
              .collect(Collectors.joining("."));
      Throwable root = e.getCause() instanceof IllegalArgumentException iae ? iae : e;
      String msg = root == e ? e.getOriginalMessage().replaceAll("\\s+", " ") : root.getMessage();
      if (e instanceof InvalidFormatException f && isInteger(f.getTargetType()))
        msg = "expected a whole number, got " + f.getValue();
      return new ConfigException(at + ": key '" + key + "': " + msg, e);
    }
    Throwable cause = e.getCause();
    if (cause instanceof IllegalArgumentException iae) {
      return new ConfigException(at + ": " + iae.getMessage(), e);
    }
    return new ConfigException(at + ": " + e.getOriginalMessage(), e);
  }

  private static boolean isInteger(Class<?> t) {
    return t == Long.class || t == Integer.class || t == long.class || t == int.class;
  }

  /** The candidate nearest to {@code key} by edit distance, if it is plausibly a typo. */
  public static String closest(String key, Collection<Object> candidates) {
    String best = null;
    int bestD = Integer.MAX_VALUE;
    for (Object o : candidates) {
      String c = String.valueOf(o);
      int d = distance(key, c);
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    }
    return best != null && bestD <= Math.max(2, key.length() / 3) ? best : null;
  }

  static int distance(String a, String b) {
    int[] prev = new int[b.length() + 1];
    int[] cur = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) prev[j] = j;
    for (int i = 1; i <= a.length(); i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
        cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
      }
      int[] t = prev;
      prev = cur;
      cur = t;
    }
    return prev[b.length()];
  }
}
