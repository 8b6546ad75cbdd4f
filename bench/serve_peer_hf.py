"""Peer for bench/gpu-serve.sh: transformers' generate on the same random TinyLlama-1.1B shape in
bf16 on the same card, 128 new tokens (greedy, EOS ignored), static batches of 1, 8, 32 and 64
prompts of ~40 tokens. Prints one RESULT line per batch size, tokens/s counting generated tokens.
No server and no continuous batching: an upper bound for what HTTP serving of the same decode
could reach with eager transformers.

usage: python3 bench/serve_peer_hf.py bench/tinyllama.json
"""
import json
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

cfg = LlamaConfig(**{k: v for k, v in json.load(open(sys.argv[1])).items() if k != "architectures"})
torch.manual_seed(0)
model = LlamaForCausalLM(cfg).to(device="cuda", dtype=torch.bfloat16).eval()
new = 128
for batch in (1, 8, 32, 64):
    ids = torch.randint(3, cfg.vocab_size, (batch, 40), device="cuda")
    kw = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)
    model.generate(ids, **dict(kw, max_new_tokens=4, min_new_tokens=4))  # warm-up
    torch.cuda.synchronize()
    t = time.perf_counter()
    out = model.generate(ids, **kw)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t
    gen = (out.shape[1] - ids.shape[1]) * batch
    print(f"RESULT peer=transformers-generate batch={batch} seconds={dt:.2f} tokens_per_s={gen / dt:.1f}", flush=True)
