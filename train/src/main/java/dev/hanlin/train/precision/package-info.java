/**
 * A run's number formats ({@link dev.hanlin.train.precision.Precision}): {@code Fp32}, {@code
 * Autocast} (fp32 weights, bf16 compute) {@code MasterWeights} (a bf16 model, fp32 masters the
 * optimizer updates and copies back) and {@code OffloadedMasters} (the same with the masters and
 * AdamW state in host memory, updated by the CPU: {@code offload_optimizer: cpu}). Each says what
 * the optimizer updates, where its gradients come from, and what checkpoints and the export hold.
 */
package dev.hanlin.train.precision;
