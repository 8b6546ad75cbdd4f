/**
 * The optimizer the loop drives ({@link dev.hanlin.train.optim.Optimizer}): {@link
 * dev.hanlin.train.optim.AdamW} with parameter groups (decay/no-decay, capped group sizes), the
 * gradient norm and clipping inside the fused kernel (native-bindings' {@code FusedAdamW}), its
 * state for checkpoints; and {@link dev.hanlin.train.optim.LrSchedule}, a function of the step.
 */
package dev.hanlin.train.optim;
