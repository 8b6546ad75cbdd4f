/**
 * The hand-written forward and backward of the Llama model (issue 16): each block's forward keeps
 * exactly the activations its backward needs ({@link dev.hanlin.train.explicit.BlockActivations}),
 * and the backward is written out ({@link dev.hanlin.train.explicit.BlockPass}, as llm.c does) with
 * the elementwise parts through {@link dev.hanlin.torch.fused.BlockOps}, so that a device can run
 * fused kernels that autograd could not differentiate. q/k/v and gate/up each run as one GEMM
 * ({@link dev.hanlin.train.explicit.Projection}); the head and loss go chunk by chunk ({@link
 * dev.hanlin.train.explicit.HeadPass}); {@link dev.hanlin.train.explicit.ExplicitBackward} walks
 * the model and {@link dev.hanlin.train.explicit.ExplicitSupport} says which runs it serves.
 */
package dev.hanlin.train.explicit;
