/**
 * Where a run's model comes from ({@link dev.hanlin.train.source.ModelSource}: a fresh init with
 * {@code config_overrides}, an HF folder, the checkpoint being resumed) and what {@link
 * dev.hanlin.train.source.ModelBuilder} makes of it: the vocabulary grown to the tokenizer's, the
 * precision applied, LoRA adapters on a frozen base.
 */
package dev.hanlin.train.source;
