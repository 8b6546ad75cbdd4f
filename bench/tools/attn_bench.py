#!/usr/bin/env python3
"""Causal attention forward + backward at TinyLlama's shape (B x 32 heads x 2048 x 64, bf16), each of
PyTorch's CUDA SDPA backends timed with CUDA events: which kernel Hanlin's Sdpa should call on this
card (FlashAttention-2 or cuDNN; -Dhanlin.sdpa=cudnn). Usage: attn_bench.py [B]. One line per backend."""
import sys, torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F

B = int(sys.argv[1]) if len(sys.argv) > 1 else 16
H, T, D = 32, 2048, 64
q, k, v = (torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2).requires_grad_()
           for _ in range(3))
dy = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
flops = 4 * B * H * T * T * D / 2  # causal forward
for name, be in [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                 ("efficient", SDPBackend.EFFICIENT_ATTENTION)]:
    try:
        with sdpa_kernel(be):
            for _ in range(3):
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True); y.backward(dy)
            e = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
            n = 10
            e[0].record()
            for _ in range(n):
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            e[1].record()
            for _ in range(n):
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True); y.backward(dy)
            e[2].record(); torch.cuda.synchronize()
            fwd = e[0].elapsed_time(e[1]) / n
            both = e[1].elapsed_time(e[2]) / n
            print(f"ATTN {name:9s} B={B} fwd {fwd:.3f} ms ({flops / fwd / 1e9:.0f} TFLOP/s)  "
                  f"bwd {both - fwd:.3f} ms ({2.5 * flops / (both - fwd) / 1e9:.0f} TFLOP/s)  "
                  f"cudnn {torch.backends.cudnn.version()}")
    except Exception as ex:  # a backend this card or build lacks
        print(f"ATTN {name:9s} unavailable: {str(ex).splitlines()[0][:160]}")
