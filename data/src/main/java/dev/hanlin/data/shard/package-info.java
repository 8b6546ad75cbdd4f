/**
 * Token shards on disk: the format ({@link dev.hanlin.data.shard.ShardFormat}: magic, version,
 * per-chunk CRCs), the {@link dev.hanlin.data.shard.ShardWriter} that {@code prepare} uses, the
 * memory-mapped {@link dev.hanlin.data.shard.ShardReader}, the {@link
 * dev.hanlin.data.shard.Manifest} that lists a prepared folder's shards, one split's shards as a
 * single token stream ({@link dev.hanlin.data.shard.TokenDataset}), and {@code --mode verify-data}
 * ({@link dev.hanlin.data.shard.VerifyData}). Nothing here tokenizes or shuffles.
 */
package dev.hanlin.data.shard;
