package dev.hanlin.data.shard;

import dev.hanlin.data.DataException;
import dev.hanlin.torch.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One split of a prepared dataset as a single token stream: its shards, memory-mapped, in manifest
 * order. Opening checks that prepare finished, that the tokenizer is the run's, and each shard's
 * header; the tokens are never copied until a block is assembled, and each shard verifies a chunk
 * of tokens the first time it is read ({@link ShardReader}).
 */
public final class TokenDataset implements AutoCloseable {
  private final Manifest manifest;
  private final List<ShardReader> shards;
  private final long[] starts; // global offset of each shard; starts[k] = total tokens

  private TokenDataset(Manifest manifest, List<ShardReader> shards) {
    this.manifest = manifest;
    this.shards = shards;
    this.starts = new long[shards.size() + 1];
    for (int i = 0; i < shards.size(); i++) starts[i + 1] = starts[i] + shards.get(i).tokenCount();
  }

  /**
   * Opens split {@code split} ({@code train} or {@code validation}) of the dataset in {@code dir};
   * {@code fingerprint} is the run's tokenizer fingerprint (null skips the check).
   */
  public static TokenDataset open(Path dir, String split, String fingerprint) throws IOException {
    if (!split.equals("train") && !split.equals("validation")) {
      throw new IllegalArgumentException("split is 'train' or 'validation', got '" + split + "'");
    }
    Manifest m = Manifest.read(dir);
    if (!m.complete()) {
      throw new DataException(
          dir
              + " holds an unfinished prepare (complete: false); run --mode prepare again to"
              + " resume it");
    }
    if (fingerprint != null && !fingerprint.equals(m.tokenizer().fingerprint())) {
      throw new DataException(
          "the dataset in "
              + dir
              + " was tokenized with tokenizer "
              + m.tokenizer().fingerprint()
              + ", but this run's tokenizer is "
              + fingerprint
              + "; run --mode prepare again with this tokenizer");
    }
    List<ShardReader> readers = new ArrayList<>();
    try {
      for (Manifest.ShardEntry e : m.shards(split)) {
        ShardReader r = ShardReader.open(dir.resolve(e.file()), m.tokenizer().fingerprint());
        readers.add(r);
        if (r.tokenCount() != e.tokens() || r.documentCount() != e.documents()) {
          throw new DataException(
              "shard "
                  + r.path()
                  + " holds "
                  + r.tokenCount()
                  + " tokens in "
                  + r.documentCount()
                  + " documents, the manifest says "
                  + e.tokens()
                  + " in "
                  + e.documents());
        }
      }
    } catch (IOException | RuntimeException e) {
      for (ShardReader r : readers) r.close();
      throw e;
    }
    long legacy = readers.stream().filter(r -> r.formatVersion() == ShardFormat.VERSION_1).count();
    if (legacy > 0) {
      System.err.println(
          "note: "
              + legacy
              + " of "
              + readers.size()
              + " "
              + split
              + " shards in "
              + dir
              + " are format version 1, without per-chunk checksums, so each was read whole at"
              + " open to check it; run --mode prepare again to have them checked as they are"
              + " read");
    }
    return new TokenDataset(m, readers);
  }

  public Manifest manifest() {
    return manifest;
  }

  public List<ShardReader> shards() {
    return shards;
  }

  public long tokenCount() {
    return starts[shards.size()];
  }

  /** Number of {@code blockSize + 1}-token windows: {@code (N - 1) / blockSize}. */
  public long windows(int blockSize) {
    return tokenCount() < 1 ? 0 : (tokenCount() - 1) / blockSize;
  }

  /** Token {@code i} of the stream. */
  public int token(long i) {
    int k = shardOf(i);
    return shards.get(k).token(i - starts[k]);
  }

  private int shardOf(long i) {
    if (i < 0 || i >= tokenCount()) {
      throw new IndexOutOfBoundsException("token " + i + " of " + tokenCount());
    }
    int k = Arrays.binarySearch(starts, i);
    if (k < 0) return -k - 2;
    while (k + 1 < starts.length && starts[k + 1] == i) k++; // skip empty shards
    return k;
  }

  /**
   * Copies tokens {@code [start, start + dst.numel())} into the 1-D tensor {@code dst} (any integer
   * dtype), from zero-copy views of the mapped shards, crossing shard boundaries as needed.
   */
  public void copyTo(long start, Tensor dst) {
    long n = dst.numel();
    long done = 0;
    while (done < n) {
      long g = start + done;
      int k = shardOf(g);
      long local = g - starts[k];
      long take = Math.min(n - done, shards.get(k).tokenCount() - local);
      dst.narrow(0, done, take).copy_(shards.get(k).tokens(local, take));
      done += take;
    }
  }

  @Override
  public void close() {
    for (ShardReader r : shards) r.close();
  }
}
