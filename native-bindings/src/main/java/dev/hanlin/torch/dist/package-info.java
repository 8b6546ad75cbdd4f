/**
 * The collectives: {@link dev.hanlin.torch.dist.Dist} reads the launcher's environment (RANK,
 * WORLD_SIZE, ...) and {@link dev.hanlin.torch.dist.Group} is a c10d process group (NCCL on GPUs,
 * Gloo on the CPU) with broadcast, all-reduce, reduce, all-gather, reduce-scatter and barriers. How
 * a training step uses them — data parallelism, the ZeRO owner policy, gradient routing — is policy
 * and lives in the engine's {@code dev.hanlin.train.parallel}.
 */
package dev.hanlin.torch.dist;
