package dev.hanlin.model;

import dev.hanlin.config.ConfigException;
import dev.hanlin.tokenizer.Tokenizer;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * A model's vocabulary grown to a tokenizer that extends the one it was trained with: the rows of
 * the embedding (and of an untied lm_head; a tied one is the same matrix) for each new piece start
 * as the mean of the rows of the base pieces that the new piece's text used to encode to, as
 * Chinese-LLaMA-Alpaca's and Llama2-Chinese's resize recipes intend. The one implementation for
 * {@code --mode resize-vocab} and for the growth at the start of a training run.
 */
public final class VocabResize {
  private VocabResize() {}

  /**
   * {@code m} (whose tokenizer is {@code base}) grown to {@code extended}'s size; the old rows are
   * the same tensors' values, bit for bit.
   *
   * @throws ConfigException when {@code base} does not match the model or {@code extended} does not
   *     extend {@code base}
   */
  public static LlamaModel grow(LlamaModel m, Tokenizer base, Tokenizer extended) {
    int rows = m.config().vocabSize();
    if (base.vocabSize() != rows)
      throw new ConfigException(
          "the base tokenizer has "
              + base.vocabSize()
              + " pieces, the model "
              + rows
              + " embedding rows: the new pieces' ids would not follow the model's");
    int[][] sources;
    try {
      sources = Tokenizer.baseIdsOfNewPieces(base, extended);
    } catch (IllegalArgumentException e) {
      throw new ConfigException("the tokenizer does not extend the model's: " + e.getMessage(), e);
    }
    return m.resizeTokenEmbeddings(extended.vocabSize(), sources);
  }

  /** What {@link #resizeFolder} wrote. */
  public record Result(int oldVocab, int newVocab, Path output) {}

  /**
   * {@code --mode resize-vocab}: the HF folder {@code baseDir} (with its tokenizer) grown to the
   * tokenizer at {@code extendedPath} and written, with that tokenizer's files, to {@code output}
   * in the base's dtype. Everything is checked before {@code output} is touched; the folder is
   * written beside it and renamed into place, so a failure leaves no half folder.
   */
  public static Result resizeFolder(Path baseDir, Path extendedPath, Path output)
      throws IOException {
    if (Files.exists(output) && !isEmptyDir(output))
      throw new ConfigException(output + ": exists and is not an empty folder; choose another");
    if (!Files.isDirectory(baseDir))
      throw new ConfigException(baseDir + ": not a model folder (expected config.json, weights)");
    Tokenizer base;
    try {
      base = Tokenizer.load(baseDir);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(
          baseDir
              + ": the base model's tokenizer is needed to initialize the new rows ("
              + e.getMessage()
              + ")",
          e);
    }
    Tokenizer extended;
    try {
      extended = Tokenizer.load(extendedPath);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(extendedPath + ": " + e.getMessage(), e);
    }
    LlamaConfig config = LlamaConfig.read(baseDir.resolve("config.json"));
    DType saved = config.dtype(); // written back as the base was saved
    int baseRows = config.vocabSize();
    if (extended.vocabSize() <= baseRows)
      throw new ConfigException(
          extendedPath
              + ": has "
              + extended.vocabSize()
              + " pieces, the model "
              + baseRows
              + " rows: nothing to grow");
    try {
      Tokenizer.baseIdsOfNewPieces(base, extended); // before the weights are read
    } catch (IllegalArgumentException e) {
      throw new ConfigException(
          extendedPath + ": does not extend " + baseDir + "'s tokenizer: " + e.getMessage(), e);
    }
    LlamaModel m = HfCheckpoint.load(baseDir, saved, Device.CPU);
    LlamaModel grown;
    try {
      grown = grow(m, base, extended);
    } catch (ConfigException e) {
      throw new ConfigException(baseDir + ": " + e.getMessage(), e);
    }
    Path tmp = output.resolveSibling(output.getFileName() + ".resize-tmp");
    deleteTree(tmp);
    HfCheckpoint.save(grown, tmp, HfCheckpoint.DEFAULT_MAX_SHARD_BYTES);
    Tokenizer.export(extendedPath, tmp);
    if (Files.exists(output)) Files.delete(output); // empty, checked above
    AtomicFiles.commit(tmp, output);
    return new Result(m.config().vocabSize(), grown.config().vocabSize(), output);
  }

  private static boolean isEmptyDir(Path p) throws IOException {
    if (!Files.isDirectory(p)) return false;
    try (Stream<Path> s = Files.list(p)) {
      return s.findAny().isEmpty();
    }
  }

  private static void deleteTree(Path p) throws IOException {
    if (!Files.exists(p)) return;
    try (Stream<Path> s = Files.walk(p)) {
      s.sorted(Comparator.reverseOrder())
          .forEach(
              f -> {
                try {
                  Files.delete(f);
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              });
    }
  }
}
