package dev.hanlin.tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * A Llama tokenizer: text to ids and back, with SentencePiece's exact semantics whatever file it
 * was loaded from. Implementations are thread-safe.
 */
public interface Tokenizer {

  /** The ids of {@code text}, with {@code <s>} before and {@code </s>} after when asked. */
  int[] encode(String text, boolean addBos, boolean addEos);

  /**
   * Ids with, for each, where in {@code text} (a char index) the text it stands for begins.
   *
   * @param ids as {@link #encode} gives them
   * @param starts {@code <s>} at 0, {@code </s>} at {@code text.length()}; a piece that begins with
   *     the dummy prefix or a space ▁ at that space (the prefix at 0); each byte-fallback token of
   *     a character at that character
   */
  record Encoding(int[] ids, int[] starts) {}

  /** {@link #encode} with each token's start offset in {@code text}. */
  Encoding encodeWithOffsets(String text, boolean addBos, boolean addEos);

  /** The text of {@code ids}, as SentencePiece's {@code DecodeIds} returns it. */
  String decode(int[] ids);

  int vocabSize();

  int bosId();

  int eosId();

  int unkId();

  /** The piece text of an id (whitespace as ▁, bytes as {@code <0xAB>}). */
  String piece(int id);

  /** A stable hex hash of the vocabulary and normalizer: equal means every id means the same. */
  String fingerprint();

  /**
   * The files of an HF tokenizer folder, as a run, {@code merge-lora} and {@code resize-vocab} copy
   * them beside a model; the first two are the ones {@link #load} reads.
   */
  List<String> FILES =
      List.of(
          "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json");

  /** Whether folder {@code dir} holds a tokenizer that {@link #load} reads (a null dir: no). */
  static boolean isIn(Path dir) {
    return dir != null
        && (Files.isRegularFile(dir.resolve("tokenizer.model"))
            || Files.isRegularFile(dir.resolve("tokenizer.json")));
  }

  /**
   * Puts the tokenizer at {@code src} (a folder, a {@code tokenizer.model} or a {@code
   * tokenizer.json}) into the model folder {@code out} as HF tokenizer files.
   */
  static void export(Path src, Path out) throws IOException {
    if (Files.isDirectory(src)) {
      for (String f : FILES)
        if (Files.exists(src.resolve(f)))
          Files.copy(src.resolve(f), out.resolve(f), StandardCopyOption.REPLACE_EXISTING);
    } else if (src.getFileName().toString().endsWith(".model")) {
      HfTokenizerJson.writeFolder(SentencePieceModel.read(src), out);
    } else {
      Files.copy(src, out.resolve("tokenizer.json"), StandardCopyOption.REPLACE_EXISTING);
    }
  }

  /**
   * Loads a {@code tokenizer.model}, a {@code tokenizer.json}, or a folder holding either (the
   * {@code tokenizer.model} wins when both are there, since it keeps SentencePiece's scores).
   * Throws {@link IllegalArgumentException} when there is no such file, and {@link
   * UncheckedIOException} for one that cannot be read or is malformed (its cause then a {@link
   * TokenizerFormatException} naming the file and offset).
   */
  static Tokenizer load(Path path) {
    if (Files.isDirectory(path)) {
      Path model = path.resolve("tokenizer.model");
      if (Files.isRegularFile(model)) return load(model);
      Path json = path.resolve("tokenizer.json");
      if (Files.isRegularFile(json)) return load(json);
      throw new IllegalArgumentException(
          "no tokenizer.model or tokenizer.json in folder " + path.toAbsolutePath());
    }
    if (!Files.isRegularFile(path)) {
      throw new IllegalArgumentException("tokenizer not found: " + path.toAbsolutePath());
    }
    SentencePieceModel model;
    try {
      model =
          path.getFileName().toString().endsWith(".json")
              ? HfTokenizerJson.read(path)
              : SentencePieceModel.read(path);
    } catch (IOException e) {
      throw new UncheckedIOException(e.getMessage(), e);
    }
    try {
      return new BpeTokenizer(model);
    } catch (IllegalArgumentException e) { // a duplicate piece, no unknown piece, unsupported type
      TokenizerFormatException bad = new TokenizerFormatException(path + ": " + e.getMessage(), e);
      throw new UncheckedIOException(bad.getMessage(), bad);
    }
  }

  /**
   * For a tokenizer that extends {@code base} (same first {@code base.vocabSize()} pieces), the
   * base ids that each new piece's text encodes to: row {@code i} is for id {@code base.vocabSize()
   * + i}. The model initializes a new token's embedding from these rows.
   */
  static int[][] baseIdsOfNewPieces(Tokenizer base, Tokenizer extended) {
    int n = base.vocabSize();
    if (extended.vocabSize() < n) {
      throw new IllegalArgumentException(
          "the extended tokenizer has " + extended.vocabSize() + " pieces, the base " + n);
    }
    for (int id = 0; id < n; id++) {
      if (!base.piece(id).equals(extended.piece(id))) {
        throw new IllegalArgumentException(
            "not an extension: id "
                + id
                + " is '"
                + base.piece(id)
                + "' in the base and '"
                + extended.piece(id)
                + "' in the extended tokenizer");
      }
    }
    int[][] rows = new int[extended.vocabSize() - n][];
    for (int id = n; id < extended.vocabSize(); id++) {
      String p = extended.piece(id);
      rows[id - n] =
          base instanceof BpeTokenizer b
              ? b.encodeNormalized(p)
              : base.encode(p.replace('\u2581', ' '), false, false);
    }
    return rows;
  }
}
