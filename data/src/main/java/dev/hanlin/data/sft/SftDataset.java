package dev.hanlin.data.sft;

import com.fasterxml.jackson.databind.JsonNode;
import dev.hanlin.data.DataException;
import dev.hanlin.data.Permutation;
import dev.hanlin.data.prepare.DocumentReader;
import dev.hanlin.data.prepare.Sources;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.Torch;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Instruction-tuning samples read from any input {@code --mode prepare} takes (through {@link
 * DocumentReader#readRecords}) and tokenized in memory. Samples are never concatenated. A prompt
 * and its response are encoded as one text, as Llama2-Chinese does, and the labels are −100 on the
 * tokens that start before the response's first character (unless {@code train_on_inputs}), so the
 * mask follows the text, not a token count. Samples longer than {@code maxLength} are cut at the
 * end and counted; samples left with no trained token are dropped and counted.
 */
public final class SftDataset {
  private static final Pattern TURN =
      Pattern.compile("<s>(Human|Assistant):(.*?)</s>", Pattern.DOTALL);
  private static final Pattern SPECIAL = Pattern.compile("</?s>");

  private final List<SftExample> examples;
  private final Stats stats;

  /** What loading saw: records read, samples cut to the maximum length, samples dropped. */
  public record Stats(long records, long truncated, long dropped, long tokens, long trained) {
    public String summary() {
      return String.format(
          "%,d records: %,d samples, %,d truncated to the block size, %,d dropped (no trained"
              + " token left), %,d tokens of which %,d trained",
          records, records - dropped, truncated, dropped, tokens, trained);
    }
  }

  private SftDataset(List<SftExample> examples, Stats stats) {
    this.examples = List.copyOf(examples);
    this.stats = stats;
  }

  public List<SftExample> examples() {
    return examples;
  }

  public int size() {
    return examples.size();
  }

  public SftExample get(int i) {
    return examples.get(i);
  }

  public Stats stats() {
    return stats;
  }

  /** Samples {@code from} (in order) as a dataset, with stats recomputed. */
  public static SftDataset of(List<SftExample> examples, long truncated, long dropped) {
    long tokens = 0, trained = 0;
    for (SftExample e : examples) {
      tokens += e.length();
      trained += e.trainedTokens();
    }
    return new SftDataset(
        examples, new Stats(examples.size() + dropped, truncated, dropped, tokens, trained));
  }

  /**
   * A seeded split: about {@code percent}% of the samples (at least one when percent > 0) go to the
   * second dataset; the order within each part is kept.
   */
  public SftDataset[] split(double percent, long seed) {
    if (percent <= 0) return new SftDataset[] {this, null};
    int n = examples.size();
    int k = Math.max(1, (int) Math.round(n * percent / 100.0));
    if (k >= n) throw new DataException("validation_split_percentage leaves no training sample");
    Permutation p = new Permutation(n, seed ^ 0x5F7DA7AL);
    boolean[] val = new boolean[n];
    for (int i = 0; i < k; i++) val[(int) p.apply(i)] = true;
    List<SftExample> a = new ArrayList<>(), b = new ArrayList<>();
    for (int i = 0; i < n; i++) (val[i] ? b : a).add(examples.get(i));
    return new SftDataset[] {of(a, stats.truncated, stats.dropped), of(b, 0, 0)};
  }

  /**
   * Reads and tokenizes every record of {@code files}, in order. Each entry may be anything {@code
   * --mode prepare} takes (a file in txt/jsonl/json/csv, optionally gzipped; a folder; a glob; a
   * CSV manifest with a {@code file_name} column), read through the same {@link DocumentReader}; a
   * txt line is a record whose text field is the line.
   */
  public static SftDataset load(List<Path> files, Tokenizer tok, SftOptions options, int maxLength)
      throws IOException {
    Builder b = new Builder(tok, options, maxLength);
    List<String> entries = files.stream().map(Path::toString).toList();
    DocumentReader.Options lines = new DocumentReader.Options(options.textField(), false, false);
    for (Path f : Sources.expand(entries, Path.of("").toAbsolutePath(), options.textField())) {
      new DocumentReader(f, lines)
          .readRecords((n, line) -> b.add(fields(n, f, line, b.o), f, line));
    }
    if (b.examples.isEmpty())
      throw new DataException("no SFT samples in " + files + " (" + b.stats().summary() + ")");
    return new SftDataset(b.examples, b.stats());
  }

  /**
   * A JSON record's fields as text. The fields the format reads must be strings: a null or a number
   * there is an error naming file:line and field (a null is not "missing", and 5 is not the text
   * "5"); the optional input field may also be null (no input). Other fields are kept as JSON.
   */
  private static Map<String, String> fields(JsonNode n, Path f, long line, SftOptions o) {
    if (!n.isObject()) throw new DataException(f + ":" + line + ": expected a JSON object");
    List<String> read = textFields(o);
    Map<String, String> m = new LinkedHashMap<>();
    for (var e : n.properties()) {
      JsonNode v = e.getValue();
      String name = e.getKey();
      boolean optionalInput = o.kind() == SftOptions.Format.ALPACA && name.equals(o.inputField());
      if (!v.isTextual() && read.contains(name) && !(v.isNull() && optionalInput)) {
        throw new DataException(
            f
                + ":"
                + line
                + ": field '"
                + name
                + "' is "
                + (v.isNull() ? "null" : describe(v))
                + "; it must be a string");
      }
      m.put(name, v.isNull() ? null : v.isTextual() ? v.asText() : v.toString());
    }
    return m;
  }

  /** The fields that {@code o}'s format reads as text. */
  private static List<String> textFields(SftOptions o) {
    return switch (o.kind()) {
      case TEXT, CHAT -> List.of(o.textField());
      case PROMPT_RESPONSE -> List.of(o.promptField(), o.responseField());
      case ALPACA -> List.of(o.instructionField(), o.inputField(), o.outputField());
    };
  }

  private static String describe(JsonNode v) {
    String json = v.toString();
    String type =
        switch (v.getNodeType()) {
          case NUMBER -> "a number";
          case BOOLEAN -> "a boolean";
          case ARRAY -> "an array";
          case OBJECT -> "an object";
          default -> v.getNodeType().toString().toLowerCase(java.util.Locale.ROOT);
        };
    return type + " (" + (json.length() <= 40 ? json : json.substring(0, 40) + "...") + ")";
  }

  /** Turns records into examples under the options. */
  static final class Builder {
    final Tokenizer tok;
    final SftOptions o;
    final int max;
    final List<SftExample> examples = new ArrayList<>();
    long records, truncated, dropped, tokens, trained;

    Builder(Tokenizer tok, SftOptions o, int maxLength) {
      if (maxLength < 2) throw new IllegalArgumentException("maxLength must be >= 2");
      this.tok = tok;
      this.o = o;
      this.max = maxLength;
    }

    Stats stats() {
      return new Stats(records, truncated, dropped, tokens, trained);
    }

    void add(Map<String, String> rec, Path f, long line) {
      records++;
      SftExample e = toExample(rec, f + ":" + line);
      if (e.length() > max) {
        truncated++;
        e = new SftExample(Arrays.copyOf(e.ids(), max), Arrays.copyOf(e.labels(), max));
      }
      if (e.trainedTokens() == 0) {
        dropped++;
        return;
      }
      tokens += e.length();
      trained += e.trainedTokens();
      examples.add(e);
    }

    SftExample toExample(Map<String, String> rec, String where) {
      return switch (o.kind()) {
        case TEXT -> {
          // every token trained, as Llama2-Chinese trains its text records
          int[] ids = encodeMarked(field(rec, o.textField(), where)).ids();
          yield new SftExample(ids, ids.clone());
        }
        case PROMPT_RESPONSE ->
            promptResponse(
                field(rec, o.promptField(), where), field(rec, o.responseField(), where));
        case ALPACA -> {
          String instruction = field(rec, o.instructionField(), where);
          String input = rec.containsKey(o.inputField()) ? rec.get(o.inputField()) : null;
          String template =
              input == null || input.isBlank() ? o.promptTemplateNoInput() : o.promptTemplate();
          String prompt =
              template
                  .replace("{instruction}", instruction)
                  .replace("{input}", input == null ? "" : input);
          yield promptResponse(prompt, field(rec, o.outputField(), where));
        }
        case CHAT -> chat(field(rec, o.textField(), where), where);
      };
    }

    /**
     * A text's ids and where each token's text starts, read as HF's Llama tokenizer reads
     * Llama2-Chinese's data ({@code <s>Human: ...\n</s><s>Assistant: ...\n</s>}): the literal
     * {@code <s>} and {@code </s>} are the special ids (at their offsets), each stretch between
     * them is encoded on its own. {@code <s>} is put first (offset 0) and {@code </s>} last (offset
     * {@code text.length()}) unless the text has them there; HF would put a second {@code <s>}
     * before a text that starts with one.
     */
    Tokenizer.Encoding encodeMarked(String text) {
      List<Tokenizer.Encoding> parts = new ArrayList<>();
      if (!text.startsWith("<s>")) parts.add(special(tok.bosId(), 0));
      Matcher m = SPECIAL.matcher(text);
      int end = 0;
      while (m.find()) {
        if (m.start() > end) parts.add(stretch(text, end, m.start()));
        parts.add(special(m.group().equals("<s>") ? tok.bosId() : tok.eosId(), m.start()));
        end = m.end();
      }
      if (end < text.length()) parts.add(stretch(text, end, text.length()));
      if (!text.endsWith("</s>")) parts.add(special(tok.eosId(), text.length()));
      int n = parts.stream().mapToInt(p -> p.ids().length).sum();
      int[] ids = new int[n], starts = new int[n];
      int at = 0;
      for (Tokenizer.Encoding p : parts) {
        System.arraycopy(p.ids(), 0, ids, at, p.ids().length);
        System.arraycopy(p.starts(), 0, starts, at, p.ids().length);
        at += p.ids().length;
      }
      return new Tokenizer.Encoding(ids, starts);
    }

    private static Tokenizer.Encoding special(int id, int at) {
      return new Tokenizer.Encoding(new int[] {id}, new int[] {at});
    }

    /** {@code text[from, to)} encoded, its offsets counted in {@code text}. */
    private Tokenizer.Encoding stretch(String text, int from, int to) {
      Tokenizer.Encoding e = tok.encodeWithOffsets(text.substring(from, to), false, false);
      int[] starts = e.starts().clone();
      for (int i = 0; i < starts.length; i++) starts[i] += from;
      return new Tokenizer.Encoding(e.ids(), starts);
    }

    /**
     * {@code prompt + response} encoded as one text, as Llama2-Chinese tokenizes {@code input +
     * target} (encoding the two apart gave every response a leading ▁), with its {@code <s>} and
     * {@code </s>} markers ({@link #encodeMarked}); labels −100 on each token whose text starts
     * before the response does. A token that straddles the boundary (a piece merging the prompt's
     * last characters with the response's first) starts in the prompt, so it is masked: exact by
     * character offset, where Llama2-Chinese's count of the prompt's own tokens can be off by one
     * there. {@code </s>} ends the sample (appended unless the response ends with it) and is
     * trained.
     */
    SftExample promptResponse(String prompt, String response) {
      Tokenizer.Encoding e = encodeMarked(prompt + response);
      int[] ids = e.ids();
      int[] labels = ids.clone();
      if (!o.trainOnInputs())
        for (int i = 0; i < ids.length; i++)
          if (e.starts()[i] < prompt.length()) labels[i] = Torch.IGNORE_INDEX;
      return new SftExample(ids, labels);
    }

    /**
     * Each turn {@code <s>Role: content</s>} becomes {@code bos ++ encode("Role: content") ++ eos}
     * (Llama2-Chinese's format, encoded as HF's tokenizer does between special tokens). Assistant
     * turns train their content and {@code </s>} (all of them, or only the last with {@code
     * last_turn_only}); the {@code <s>Assistant:} header and human turns are masked unless {@code
     * train_on_inputs}.
     */
    SftExample chat(String text, String where) {
      Matcher m = TURN.matcher(text);
      List<int[]> idParts = new ArrayList<>();
      List<Boolean> trainedParts = new ArrayList<>();
      int end = 0, lastAssistant = -1;
      while (m.find()) {
        if (!text.substring(end, m.start()).isBlank())
          throw new DataException(
              where
                  + ": text outside a <s>Human: ...</s> or <s>Assistant: ...</s> turn: '"
                  + abbreviate(text.substring(end, m.start()))
                  + "'");
        end = m.end();
        boolean assistant = m.group(1).equals("Assistant");
        // the turn's text between <s> and </s> as one piece of text, as HF's Llama tokenizer
        // encodes the segments between special tokens; the header is what starts before the
        // content (the space after the colon belongs to the content)
        String role = m.group(1) + ":";
        Tokenizer.Encoding e = tok.encodeWithOffsets(role + m.group(2), false, false);
        int h = 0;
        while (h < e.ids().length && e.starts()[h] < role.length()) h++;
        idParts.add(concat(new int[] {tok.bosId()}, Arrays.copyOf(e.ids(), h)));
        trainedParts.add(false);
        if (assistant) lastAssistant = idParts.size();
        idParts.add(
            concat(Arrays.copyOfRange(e.ids(), h, e.ids().length), new int[] {tok.eosId()}));
        trainedParts.add(assistant);
      }
      if (!text.substring(end).isBlank())
        throw new DataException(
            where + ": text after the last turn: '" + abbreviate(text.substring(end)) + "'");
      if (lastAssistant < 0)
        throw new DataException(where + ": no <s>Assistant: ...</s> turn in the chat text");
      int n = idParts.stream().mapToInt(a -> a.length).sum();
      int[] ids = new int[n], labels = new int[n];
      int at = 0;
      for (int i = 0; i < idParts.size(); i++) {
        int[] part = idParts.get(i);
        boolean train =
            o.trainOnInputs() || (trainedParts.get(i) && (!o.lastTurnOnly() || i == lastAssistant));
        for (int id : part) {
          ids[at] = id;
          labels[at++] = train ? id : Torch.IGNORE_INDEX;
        }
      }
      return new SftExample(ids, labels);
    }

    private static String field(Map<String, String> rec, String name, String where) {
      String v = rec.get(name);
      if (v == null)
        throw new DataException(
            where
                + ": missing field '"
                + name
                + "' (the record has "
                + rec.keySet()
                + "); set the sft field names in the config");
      return v;
    }
  }

  static int[] concat(int[] a, int[] b) {
    int[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  private static String abbreviate(String s) {
    s = s.strip();
    return s.length() <= 40 ? s : s.substring(0, 40) + "...";
  }
}
