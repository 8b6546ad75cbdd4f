package dev.hanlin.data.shard;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.hanlin.data.DataException;
import dev.hanlin.data.prepare.PrepareConfig;
import dev.hanlin.torch.io.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code manifest.json} beside the shards: the tokenizer they were made with, every source with its
 * size, mtime and counts, the shards of each split in order, and every bad-input count. It is
 * rewritten atomically while prepare runs ({@code complete: false}), which is how an interrupted
 * run resumes, and once more at the end.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Manifest(
    @JsonProperty("format") String format,
    @JsonProperty("version") int version,
    @JsonProperty("complete") boolean complete,
    @JsonProperty("tokenizer") TokenizerInfo tokenizer,
    @JsonProperty("dtype") String dtype,
    @JsonProperty("options_hash") String optionsHash,
    @JsonProperty("config") PrepareConfig config,
    @JsonProperty("splits") Splits splits,
    @JsonProperty("counts") Counts counts,
    @JsonProperty("sources") List<SourceEntry> sources,
    @JsonProperty("pending") List<SourceEntry> pending,
    @JsonProperty("partial") Partial partial,
    @JsonProperty("problems") List<String> problems) {

  public static final String FILE_NAME = "manifest.json";
  public static final String FORMAT = "hanlin-token-shards";
  public static final int VERSION = 1;

  static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  /** The tokenizer the shards were made with. */
  public record TokenizerInfo(
      @JsonProperty("fingerprint") String fingerprint,
      @JsonProperty("vocab_size") int vocabSize,
      @JsonProperty("bos_id") int bosId,
      @JsonProperty("eos_id") int eosId) {}

  /** Totals per split. */
  public record Splits(
      @JsonProperty("train") SplitTotals train,
      @JsonProperty("validation") SplitTotals validation) {}

  /** Documents, tokens and shards of one split. */
  public record SplitTotals(
      @JsonProperty("documents") long documents,
      @JsonProperty("tokens") long tokens,
      @JsonProperty("shards") int shards) {}

  /** One shard file, relative to the manifest's folder. */
  public record ShardEntry(
      @JsonProperty("file") String file,
      @JsonProperty("tokens") long tokens,
      @JsonProperty("documents") long documents) {}

  /**
   * One input file and what came of it.
   *
   * @param key a hash of everything that decides the shards' content (path, size, mtime, tokenizer,
   *     options); an unchanged key means the shards can be reused
   */
  public record SourceEntry(
      @JsonProperty("path") String path,
      @JsonProperty("role") String role,
      @JsonProperty("size") long size,
      @JsonProperty("mtime_ms") long mtimeMillis,
      @JsonProperty("key") String key,
      @JsonProperty("counts") Counts counts,
      @JsonProperty("train") List<ShardEntry> train,
      @JsonProperty("validation") List<ShardEntry> validation,
      @JsonProperty("problems") List<String> problems) {}

  /**
   * The input an interrupted prepare was in the middle of: what it had written (shards closed at a
   * checkpoint, counts up to there) and where to go on reading.
   *
   * @param entry the source so far (its key is the source's key)
   * @param nextRecord the first record not yet in the shards
   * @param trainDocumentsTotal train documents of the whole run so far (for max_train_samples)
   * @param validationDocumentsTotal validation documents of the whole run so far
   * @param badRecordsTotal bad records of the whole run so far (for max_bad_records)
   */
  public record Partial(
      @JsonProperty("entry") SourceEntry entry,
      @JsonProperty("next_record") long nextRecord,
      @JsonProperty("train_documents_total") long trainDocumentsTotal,
      @JsonProperty("validation_documents_total") long validationDocumentsTotal,
      @JsonProperty("bad_records_total") long badRecordsTotal) {}

  /**
   * Every count prepare keeps; nothing is dropped without being counted here.
   *
   * @param records records read (lines, JSON objects, CSV rows, files)
   * @param trainDocuments documents written to the train split
   * @param validationDocuments documents written to the validation split
   * @param emptyDocuments records whose text is empty or blank (skipped)
   * @param invalidUtf8 malformed UTF-8 sequences (each replaced by U+FFFD)
   * @param malformed records that are not valid JSON / CSV (skipped)
   * @param missingField records without the text field (skipped)
   * @param overLimit documents beyond {@code max_train_samples} / {@code max_eval_samples}
   */
  public record Counts(
      @JsonProperty("records") long records,
      @JsonProperty("train_documents") long trainDocuments,
      @JsonProperty("validation_documents") long validationDocuments,
      @JsonProperty("train_tokens") long trainTokens,
      @JsonProperty("validation_tokens") long validationTokens,
      @JsonProperty("empty_documents") long emptyDocuments,
      @JsonProperty("invalid_utf8") long invalidUtf8,
      @JsonProperty("malformed") long malformed,
      @JsonProperty("missing_field") long missingField,
      @JsonProperty("over_limit") long overLimit,
      @JsonProperty("bytes") long bytes) {

    public static final Counts ZERO = new Counts(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    public Counts plus(Counts o) {
      return new Counts(
          records + o.records,
          trainDocuments + o.trainDocuments,
          validationDocuments + o.validationDocuments,
          trainTokens + o.trainTokens,
          validationTokens + o.validationTokens,
          emptyDocuments + o.emptyDocuments,
          invalidUtf8 + o.invalidUtf8,
          malformed + o.malformed,
          missingField + o.missingField,
          overLimit + o.overLimit,
          bytes + o.bytes);
    }
  }

  /** The shard files of {@code split} ({@code train} or {@code validation}) in order. */
  public List<ShardEntry> shards(String split) {
    List<ShardEntry> out = new ArrayList<>();
    for (SourceEntry s : sources) {
      List<ShardEntry> l = split.equals("train") ? s.train() : s.validation();
      if (l != null) out.addAll(l);
    }
    return out;
  }

  public static Manifest read(Path dir) throws IOException {
    Path f = dir.resolve(FILE_NAME);
    if (!Files.isRegularFile(f)) {
      throw new DataException("no " + FILE_NAME + " in " + dir + "; run --mode prepare first");
    }
    Manifest m = JSON.readValue(f.toFile(), Manifest.class);
    if (!FORMAT.equals(m.format()) || m.version() != VERSION) {
      throw new DataException(
          f + " is format " + m.format() + " v" + m.version() + ", expected " + FORMAT + " v1");
    }
    return m;
  }

  public void write(Path dir) throws IOException {
    AtomicFiles.write(dir.resolve(FILE_NAME), JSON.writeValueAsBytes(this));
  }
}
