/**
 * Hanlin's data pipeline: raw corpora to token shards once, then packed, shuffled, exactly
 * resumable batches; and instruction-tuning samples. One subpackage per concern:
 *
 * <ul>
 *   <li>{@link dev.hanlin.data.prepare}: {@code --mode prepare}: input files ({@link
 *       dev.hanlin.data.prepare.DocumentReader}, also SFT's reader) to token shards.
 *   <li>{@link dev.hanlin.data.shard}: the shard file format, its writer and memory-mapped reader,
 *       the manifest, one split as a {@link dev.hanlin.data.shard.TokenDataset}, {@code --mode
 *       verify-data}.
 *   <li>{@link dev.hanlin.data.loader}: pretraining batches: which windows each rank reads, and the
 *       background {@link dev.hanlin.data.loader.DataLoader}.
 *   <li>{@link dev.hanlin.data.sft}: instruction-tuning samples, their masks and batches.
 * </ul>
 *
 * <p>The few types here are the ones several subpackages and the trainer share: the {@link
 * dev.hanlin.data.Cursor} a checkpoint saves, the {@link dev.hanlin.data.LabelledBatch} both tasks
 * hand the trainer, the memory-free {@link dev.hanlin.data.Permutation} (and its {@code mix}) that
 * seeds every shuffle and the validation split, and {@link dev.hanlin.data.DataException}. Files
 * are written through {@link dev.hanlin.torch.io.AtomicFiles}.
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
 */
package dev.hanlin.data;
