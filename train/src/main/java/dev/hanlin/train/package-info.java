/**
 * The training engine. {@link dev.hanlin.train.TrainingRun} sets a run up: it joins the process
 * group, builds each component once from the config and resumes; {@link dev.hanlin.train.Trainer}
 * is the loop over them, the same code for every run.
 *
 * <ul>
 *   <li>{@code precision}: number formats (fp32, bf16 autocast, bf16 with fp32 master weights).
 *   <li>{@code parallel}: how ranks share a step (one process, DDP, ZeRO-1, ZeRO-2; FSDP next).
 *   <li>{@code optim}: AdamW with parameter groups and its state, the learning-rate schedule.
 *   <li>{@code source}: where the weights come from (fresh, HF folder, checkpoint), vocabulary
 *       growth, LoRA wrapping.
 *   <li>{@code task}: what is trained on (pretraining, SFT): batches, loss divisor, evaluation,
 *       export.
 *   <li>{@code hooks}: what hangs off the loop: checkpoints and resuming, throughput and MFU, the
 *       non-finite guard, the out-of-memory explanation.
 *   <li>{@code metrics}: listeners (progress, metrics.jsonl, TensorBoard, the loss plot).
 *   <li>{@code explicit}: the hand-written forward and backward ({@code explicit_backward}).
 * </ul>
 *
 * <p>Here too: {@link dev.hanlin.train.Backward} and {@link dev.hanlin.train.RecomputingBackward}
 * (a micro-batch's forward and backward, with activation checkpointing), {@link
 * dev.hanlin.train.Checkpoints} (the checkpoint format on disk), {@link
 * dev.hanlin.train.PretrainConfig} (the run's keys), {@link dev.hanlin.train.Evaluator}.
 */
package dev.hanlin.train;
