/**
 * {@code --mode prepare}: the configured inputs ({@link dev.hanlin.data.prepare.PrepareConfig}) —
 * files, folders, globs, CSV manifests ({@code Sources}), each txt/jsonl/json/csv, optionally
 * gzipped — are read in order by {@link dev.hanlin.data.prepare.DocumentReader}, tokenized in
 * parallel and written as token shards with a manifest by {@link dev.hanlin.data.prepare.Prepare};
 * unchanged inputs are reused and interrupted runs resume.
 *
 * <p>{@link dev.hanlin.data.prepare.DocumentReader} is also how SFT reads its files, so an input
 * form that prepare accepts, SFT accepts too. The shard format itself lives in {@link
 * dev.hanlin.data.shard}; the manifest records the {@code PrepareConfig} it was built from, the one
 * place where {@code shard} refers back here.
 */
package dev.hanlin.data.prepare;
