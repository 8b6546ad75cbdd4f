/**
 * The fused AdamW kernel call ({@link dev.hanlin.torch.optim.FusedAdamW}): libtorch's {@code
 * _fused_adamw_} over lists of parameters, gradients and moments, with the clip scale and the
 * non-finite flag applied inside the kernel. Parameter groups, state and the schedule are the
 * engine's ({@code dev.hanlin.train.optim}).
 */
package dev.hanlin.torch.optim;
