/**
 * Pretraining batches from a {@link dev.hanlin.data.shard.TokenDataset}: {@link
 * dev.hanlin.data.loader.BlockSampler} decides which {@code block_size + 1} windows each rank reads
 * at a {@link dev.hanlin.data.Cursor} (a seeded permutation per epoch, so a cursor is two numbers);
 * {@link dev.hanlin.data.loader.DataLoader} assembles them into {@link
 * dev.hanlin.data.loader.Batch}es on a background thread, configured by {@link
 * dev.hanlin.data.loader.LoaderOptions}.
 */
package dev.hanlin.data.loader;
