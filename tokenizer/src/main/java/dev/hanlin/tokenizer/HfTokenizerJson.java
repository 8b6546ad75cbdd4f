package dev.hanlin.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hanlin.tokenizer.SentencePieceModel.Piece;
import dev.hanlin.tokenizer.SentencePieceModel.Type;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * HF {@code tokenizer.json} for Llama-style BPE, both ways. Writing follows transformers' {@code
 * LlamaConverter} (merges from every split of every piece, ordered by the merged piece's score), so
 * HF tokenizers loads the folder as a {@code LlamaTokenizerFast}. Reading turns merge ranks back
 * into scores (earlier merge, higher score); SentencePiece's exact scores are only in
 * tokenizer.model, which {@link Tokenizer#load} prefers when a folder has both.
 */
public final class HfTokenizerJson {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String SPACE = "\u2581";

  private HfTokenizerJson() {}

  /** Reads a tokenizer.json with a BPE model into a SentencePiece model of the same behaviour. */
  public static SentencePieceModel read(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
    JsonNode m = root.path("model");
    if (!"BPE".equals(m.path("type").asText())) {
      throw new IllegalArgumentException(
          file + ": model.type is '" + m.path("type").asText() + "', only BPE is supported");
    }
    // ids must be dense, so none can reach the number of entries: checked before any array is
    // sized by an id from the file
    int entries = m.path("vocab").size() + root.path("added_tokens").size();
    Map<String, Integer> vocab = new HashMap<>();
    int size = 0;
    for (Iterator<Map.Entry<String, JsonNode>> it = m.path("vocab").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      int id = id(file, "vocab entry '" + e.getKey() + "'", e.getValue(), entries);
      vocab.put(e.getKey(), id);
      size = Math.max(size, id + 1);
    }
    Map<Integer, JsonNode> added = new HashMap<>();
    for (JsonNode a : root.path("added_tokens")) {
      int id = id(file, "added token " + a.path("content"), a.path("id"), entries);
      added.put(id, a);
      size = Math.max(size, id + 1);
    }
    String[] text = new String[size];
    vocab.forEach((k, v) -> text[v] = k);
    added.forEach((id, a) -> text[id] = a.path("content").asText());
    for (int i = 0; i < size; i++) {
      if (text[i] == null) throw new IllegalArgumentException(file + ": no token has id " + i);
      if (text[i].isEmpty())
        throw new IllegalArgumentException(file + ": token " + i + " is empty");
    }
    float[] score = new float[size];
    Arrays.fill(score, Float.NaN);
    int rank = 0;
    for (JsonNode mg : m.path("merges")) {
      String l, r;
      if (mg.isArray()) {
        if (mg.size() != 2) throw new IllegalArgumentException(file + ": bad merge " + mg);
        l = mg.get(0).asText();
        r = mg.get(1).asText();
      } else {
        String s = mg.asText();
        int sp = s.indexOf(' ', 1);
        if (sp < 0) throw new IllegalArgumentException(file + ": bad merge '" + s + "'");
        l = s.substring(0, sp);
        r = s.substring(sp + 1);
      }
      Integer id = vocab.get(l + r);
      if (id != null && Float.isNaN(score[id])) score[id] = -rank;
      rank++;
    }
    boolean byteFallback = m.path("byte_fallback").asBoolean(false);
    String unkToken = m.path("unk_token").asText("<unk>");
    List<Piece> pieces = new ArrayList<>(size);
    int unk = -1, bos = -1, eos = -1;
    for (int id = 0; id < size; id++) {
      String t = text[id];
      JsonNode a = added.get(id);
      Type type;
      if (t.equals(unkToken)) {
        type = Type.UNKNOWN;
        unk = id;
      } else if (a != null && a.path("special").asBoolean(false)) {
        type = Type.CONTROL;
      } else if (byteFallback && t.matches("<0x[0-9A-F]{2}>")) {
        type = Type.BYTE;
      } else if (a != null) {
        type = Type.USER_DEFINED;
      } else {
        type = Type.NORMAL;
      }
      if (t.equals("<s>")) bos = id;
      if (t.equals("</s>")) eos = id;
      float s = score[id];
      if (Float.isNaN(s)) s = type == Type.NORMAL ? -(rank + id) : 0f;
      pieces.add(new Piece(t, s, type));
    }
    if (unk < 0)
      throw new IllegalArgumentException(file + ": unk_token " + unkToken + " not found");
    return SentencePieceModel.llamaStyle(pieces, unk, bos, eos, byteFallback, hasDummyPrefix(root));
  }

  private static int id(Path file, String what, JsonNode id, int entries) {
    if (!id.canConvertToInt()
        || !id.isIntegralNumber()
        || id.intValue() < 0
        || id.intValue() >= entries)
      throw new IllegalArgumentException(
          file + ": " + what + " has id " + id + ", not one of 0.." + (entries - 1));
    return id.intValue();
  }

  private static boolean hasDummyPrefix(JsonNode root) {
    String all = root.path("normalizer").toString() + root.path("pre_tokenizer").toString();
    if (all.contains("\"Prepend\"")) return true;
    JsonNode pre = root.path("pre_tokenizer");
    if (all.contains("\"Metaspace\"")) {
      String scheme = pre.findPath("prepend_scheme").asText("");
      return !scheme.equals("never") && pre.findPath("add_prefix_space").asBoolean(true);
    }
    return false;
  }

  /**
   * Writes an HF tokenizer folder: tokenizer.model, tokenizer.json, tokenizer_config.json and
   * special_tokens_map.json.
   */
  public static void writeFolder(SentencePieceModel model, Path dir) {
    try {
      Files.createDirectories(dir);
      model.write(dir.resolve("tokenizer.model"));
      ObjectMapper pretty = JSON.copy().enable(SerializationFeature.INDENT_OUTPUT);
      pretty.writeValue(dir.resolve("tokenizer.json").toFile(), toJson(model));
      List<Piece> ps = model.pieces();
      String unk = ps.get(model.unkId()).text();
      String bos = model.bosId() >= 0 ? ps.get(model.bosId()).text() : null;
      String eos = model.eosId() >= 0 ? ps.get(model.eosId()).text() : null;
      ObjectNode cfg = JsonNodeFactory.instance.objectNode();
      cfg.put("tokenizer_class", "LlamaTokenizer");
      cfg.put("add_bos_token", true);
      cfg.put("add_eos_token", false);
      cfg.put("bos_token", bos);
      cfg.put("eos_token", eos);
      cfg.put("unk_token", unk);
      cfg.putNull("pad_token");
      cfg.put("clean_up_tokenization_spaces", false);
      cfg.put("legacy", true);
      cfg.put("model_max_length", 1000000000000000019L);
      cfg.putObject("sp_model_kwargs");
      pretty.writeValue(dir.resolve("tokenizer_config.json").toFile(), cfg);
      ObjectNode special = JsonNodeFactory.instance.objectNode();
      special.put("bos_token", bos);
      special.put("eos_token", eos);
      special.put("unk_token", unk);
      pretty.writeValue(dir.resolve("special_tokens_map.json").toFile(), special);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write tokenizer files to " + dir, e);
    }
  }

  /** The tokenizer.json tree for a model, as transformers' LlamaConverter would produce it. */
  public static ObjectNode toJson(SentencePieceModel model) {
    JsonNodeFactory f = JsonNodeFactory.instance;
    List<Piece> ps = model.pieces();
    ObjectNode root = f.objectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    for (int id = 0; id < ps.size(); id++) {
      Type t = ps.get(id).type();
      if (t == Type.CONTROL || t == Type.UNKNOWN || t == Type.USER_DEFINED) {
        ObjectNode a = added.addObject();
        a.put("id", id);
        a.put("content", ps.get(id).text());
        a.put("single_word", false);
        a.put("lstrip", false);
        a.put("rstrip", false);
        a.put("normalized", false);
        a.put("special", t != Type.USER_DEFINED);
      }
    }
    ObjectNode norm = root.putObject("normalizer");
    norm.put("type", "Sequence");
    ArrayNode ns = norm.putArray("normalizers");
    if (model.addDummyPrefix()) ns.addObject().put("type", "Prepend").put("prepend", SPACE);
    ObjectNode rep = ns.addObject().put("type", "Replace");
    rep.putObject("pattern").put("String", " ");
    rep.put("content", SPACE);
    root.putNull("pre_tokenizer");
    String bos = model.bosId() >= 0 ? ps.get(model.bosId()).text() : null;
    if (bos != null) {
      ObjectNode post = root.putObject("post_processor");
      post.put("type", "TemplateProcessing");
      ArrayNode single = post.putArray("single");
      single.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 0);
      single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
      ArrayNode pair = post.putArray("pair");
      pair.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 0);
      pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
      pair.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 1);
      pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
      ObjectNode st = post.putObject("special_tokens").putObject(bos);
      st.put("id", bos);
      st.putArray("ids").add(model.bosId());
      st.putArray("tokens").add(bos);
    } else {
      root.putNull("post_processor");
    }
    ObjectNode dec = root.putObject("decoder");
    dec.put("type", "Sequence");
    ArrayNode ds = dec.putArray("decoders");
    ObjectNode drep = ds.addObject().put("type", "Replace");
    drep.putObject("pattern").put("String", SPACE);
    drep.put("content", " ");
    ds.addObject().put("type", "ByteFallback");
    ds.addObject().put("type", "Fuse");
    if (model.addDummyPrefix()) {
      ds.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
    }
    ObjectNode m = root.putObject("model");
    m.put("type", "BPE");
    m.putNull("dropout");
    m.put("unk_token", ps.get(model.unkId()).text());
    m.putNull("continuing_subword_prefix");
    m.putNull("end_of_word_suffix");
    m.put("fuse_unk", true);
    m.put("byte_fallback", model.byteFallback());
    ObjectNode vocab = m.putObject("vocab");
    for (int id = 0; id < ps.size(); id++) vocab.put(ps.get(id).text(), id);
    ArrayNode merges = m.putArray("merges");
    for (int[] mg : merges(model)) {
      merges.add(ps.get(mg[1]).text() + " " + ps.get(mg[2]).text());
    }
    return root;
  }

  /**
   * Every (piece, left, right) where left + right = piece and all three can merge, ordered as
   * LlamaConverter orders them: by the merged piece's score, best first, then by ids.
   */
  static List<int[]> merges(SentencePieceModel model) {
    List<Piece> ps = model.pieces();
    Map<String, Integer> mergeable = new HashMap<>();
    for (int id = 0; id < ps.size(); id++) {
      Type t = ps.get(id).type();
      if (t == Type.NORMAL || t == Type.USER_DEFINED || t == Type.UNUSED) {
        mergeable.put(ps.get(id).text(), id);
      }
    }
    List<int[]> out = new ArrayList<>();
    for (int id = 0; id < ps.size(); id++) {
      String t = ps.get(id).text();
      if (!mergeable.containsKey(t)) continue;
      for (int k = t.offsetByCodePoints(0, 1); k < t.length(); k = t.offsetByCodePoints(k, 1)) {
        Integer l = mergeable.get(t.substring(0, k));
        Integer r = mergeable.get(t.substring(k));
        if (l != null && r != null) out.add(new int[] {id, l, r});
      }
    }
    out.sort(
        Comparator.<int[]>comparingDouble(mg -> -ps.get(mg[0]).score())
            .thenComparingInt(mg -> mg[0])
            .thenComparingInt(mg -> mg[1])
            .thenComparingInt(mg -> mg[2]));
    return out;
  }
}
