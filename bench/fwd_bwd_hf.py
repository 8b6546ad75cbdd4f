#!/usr/bin/env python3
"""transformers' side of ForwardBackwardBench: the same shape, batch, sequence and step count.

Random-init LlamaForCausalLM in bf16 (model.to(bfloat16), no optimizer), sdpa attention, loss from
labels (transformers upcasts logits to fp32), backward, zero_grad(set_to_none=True).
usage: python3 bench/fwd_bwd_hf.py [preset=tinyllama] [batch=4] [seq=2048] [steps=10] [warmup=3]
"""
import sys, time
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

a = sys.argv[1:] + [None] * 5
preset = a[0] or "tinyllama"
batch, seq, steps, warmup = int(a[1] or 4), int(a[2] or 2048), int(a[3] or 10), int(a[4] or 3)
shapes = {
    "tinyllama": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                      num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048),
    "llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096),
}
cfg = LlamaConfig(vocab_size=32000, rms_norm_eps=1e-5, **shapes[preset])
torch.manual_seed(0)
model = LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa", torch_dtype=torch.bfloat16).cuda()
model.train()
g = torch.Generator().manual_seed(1)
ids = (torch.randn(batch, seq + 1, generator=g).abs() * 1000).long().cuda()
inp, lab = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
for step in range(warmup + steps):
    if step == warmup:
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); t0 = time.perf_counter()
    # labels already shifted: pass logits through the same mean CE as Hanlin
    logits = model(input_ids=inp).logits
    loss = torch.nn.functional.cross_entropy(logits.float().view(-1, cfg.vocab_size), lab.view(-1))
    loss.backward()
    model.zero_grad(set_to_none=True)
torch.cuda.synchronize()
sec = time.perf_counter() - t0
n = sum(p.numel() for p in model.parameters())
tps = batch * seq * steps / sec
flops = 6 * n + 6 * cfg.num_hidden_layers * seq * cfg.hidden_size
print(f"RESULT transformers-{transformers.__version__} preset={preset} batch={batch} seq={seq} steps={steps} "
      f"tokens_per_s={tps:.0f} ms_per_step={sec*1000/steps:.1f} tflops={tps*flops/1e12:.1f} "
      f"peak_alloc_gib={torch.cuda.max_memory_allocated()/2**30:.2f} "
      f"peak_reserved_gib={torch.cuda.max_memory_reserved()/2**30:.2f} loss={loss.item():.4f} params={n}")
