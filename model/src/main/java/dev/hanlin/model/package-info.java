/**
 * The Llama model and its files, knowing nothing of training or parallelism.
 *
 * <ul>
 *   <li>{@link dev.hanlin.model.LlamaConfig}: the hyperparameters, HF {@code config.json} in and
 *       out.
 *   <li>{@link dev.hanlin.model.LlamaModel}: embedding, {@link dev.hanlin.model.TransformerBlock}s
 *       and head over a map of weights under HF names; one {@code positions} path (rotary angles
 *       and mask) serves plain, packed and cached forwards. Each block is {@link
 *       dev.hanlin.model.RmsNorm}, {@link dev.hanlin.model.Attention} (q, k, v, o), RmsNorm, {@link
 *       dev.hanlin.model.FeedForward} (gate, up, down); each projection a {@link
 *       dev.hanlin.model.Linear} of a {@link dev.hanlin.model.BaseWeight} (a tensor, or a 4-/8-bit
 *       one from {@code dev.hanlin.model.quant}), a bias and its LoRA update. Training code walks
 *       these public blocks (the recomputing backward lives in {@code train/}).
 *   <li>LoRA: {@link dev.hanlin.model.LoraConfig}, {@link dev.hanlin.model.LoraAdapters} (init,
 *       apply, merge), {@link dev.hanlin.model.PeftAdapter} (PEFT's folder layout).
 *   <li>Files: {@link dev.hanlin.model.HfCheckpoint} (HF folders, optionally quantizing the base
 *       while loading), {@link dev.hanlin.model.VocabResize}.
 *   <li>Inference: {@link dev.hanlin.model.TextGeneration} with a {@link dev.hanlin.model.KvCache};
 *       {@link dev.hanlin.model.BatchEngine} with a {@link dev.hanlin.model.SlotKvCache} for many
 *       sequences at once (serving).
 * </ul>
 */
package dev.hanlin.model;
