/**
 * Instruction tuning: {@link dev.hanlin.data.sft.SftDataset} reads records through {@link
 * dev.hanlin.data.prepare.DocumentReader} (so every input form of {@code prepare} works) and
 * tokenizes them with their labels ({@link dev.hanlin.data.sft.SftExample}, masked with {@link
 * dev.hanlin.torch.Torch#IGNORE_INDEX}) as {@link dev.hanlin.data.sft.SftOptions} says; {@link
 * dev.hanlin.data.sft.SftSampler} orders them per epoch at a {@link dev.hanlin.data.Cursor} and
 * {@link dev.hanlin.data.sft.SftCollator} pads them into {@link dev.hanlin.data.LabelledBatch}es
 * for {@link dev.hanlin.data.sft.SftLoader}.
 */
package dev.hanlin.data.sft;
