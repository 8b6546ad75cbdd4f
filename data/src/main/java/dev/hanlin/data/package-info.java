/**
 * Hanlin's data pipeline: raw corpora to token shards once, then packed, shuffled, exactly
 * resumable batches.
 *
 * <pre>{@code
 * // --mode prepare (or Prepare.run(config, tokenizer, err)): shards + manifest.json in output_dir
 * try (TokenDataset train = TokenDataset.open(dir, "train", tokenizer.fingerprint());
 *     DataLoader loader =
 *         new DataLoader(train, LoaderOptions.of(blockSize, batch, seed).withRank(r, world)
 *             .withDevice(device), savedCursorOrStart)) {
 *   try (Scope s = Scope.open(); Batch b = loader.next()) {
 *     // b.inputs(), b.targets(): (B, T) int64; save b.cursor() with the checkpoint of this step
 *   }
 * }
 * }</pre>
 *
 * <ul>
 *   <li>{@link dev.hanlin.data.Prepare}: inputs ({@link dev.hanlin.data.PrepareConfig}) read in
 *       order, tokenized in parallel, written as {@link dev.hanlin.data.ShardReader token shards}
 *       with a {@link dev.hanlin.data.Manifest}; unchanged inputs are reused and interrupted runs
 *       resume.
 *   <li>{@link dev.hanlin.data.TokenDataset}: one split's shards, memory-mapped, as one stream.
 *   <li>{@link dev.hanlin.data.BlockSampler}: which {@code block_size + 1} windows each rank reads
 *       at a {@link dev.hanlin.data.Cursor}; {@link dev.hanlin.data.DataLoader} assembles them in a
 *       background thread.
 *   <li>{@link dev.hanlin.data.VerifyData}: {@code --mode verify-data}.
 * </ul>
 */
package dev.hanlin.data;
