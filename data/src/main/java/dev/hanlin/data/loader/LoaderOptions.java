package dev.hanlin.data.loader;

import dev.hanlin.torch.Device;

/**
 * How the loader cuts and deals blocks.
 *
 * @param blockSize tokens per training example T (each window holds T + 1); see {@link BlockSize}
 * @param batchSize blocks per step on this rank
 * @param seed seeds the block order together with the epoch
 * @param shuffle false for evaluation: blocks in stream order
 * @param rank this process's rank
 * @param worldSize number of ranks
 * @param prefetch batches assembled ahead by the background thread
 * @param device where batches go ({@code cuda:N} copies from pinned memory without blocking)
 */
public record LoaderOptions(
    int blockSize,
    int batchSize,
    long seed,
    boolean shuffle,
    int rank,
    int worldSize,
    int prefetch,
    Device device) {

  public LoaderOptions {
    if (blockSize < 1) throw new IllegalArgumentException("block size " + blockSize);
    if (batchSize < 1) throw new IllegalArgumentException("batch size " + batchSize);
    if (worldSize < 1 || rank < 0 || rank >= worldSize) {
      throw new IllegalArgumentException("rank " + rank + " of world size " + worldSize);
    }
    if (prefetch < 1) throw new IllegalArgumentException("prefetch " + prefetch);
    if (device == null) device = Device.CPU;
  }

  /** Single process on the CPU, shuffled, two batches ahead. */
  public static LoaderOptions of(int blockSize, int batchSize, long seed) {
    return new LoaderOptions(blockSize, batchSize, seed, true, 0, 1, 2, Device.CPU);
  }

  public LoaderOptions withRank(int rank, int worldSize) {
    return new LoaderOptions(
        blockSize, batchSize, seed, shuffle, rank, worldSize, prefetch, device);
  }

  public LoaderOptions withShuffle(boolean shuffle) {
    return new LoaderOptions(
        blockSize, batchSize, seed, shuffle, rank, worldSize, prefetch, device);
  }

  public LoaderOptions withDevice(Device device) {
    return new LoaderOptions(
        blockSize, batchSize, seed, shuffle, rank, worldSize, prefetch, device);
  }
}
