/**
 * What hangs off the training loop between steps: {@link dev.hanlin.train.hooks.Checkpointing}
 * (where a run resumes from, and a checkpoint's parts: model, optimizer, random state, trainer
 * state), {@link dev.hanlin.train.hooks.Throughput} (step time, tokens/s, MFU from the GPU's name),
 * {@link dev.hanlin.train.hooks.NonFiniteGuard} and {@link dev.hanlin.train.hooks.OutOfMemory}.
 */
package dev.hanlin.train.hooks;
