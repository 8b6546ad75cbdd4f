#!/usr/bin/env python3
"""transformers' Trainer on the TinyLlama-1.1B shape: the peer that Hanlin's pretrain is measured against.

Pinned settings (match bench/pretrain-tinyllama.yaml): random init in fp32, Trainer bf16=True
(autocast, fp32 master weights), sdpa attention, optim adamw_torch_fused, per-device batch 4,
sequence 2048, no gradient accumulation, max_grad_norm 1.0, lr 4e-4 with 30 warmup steps, cosine.
Tokens are random ids (speed does not depend on their values). Throughput is timed over the steps
after the first WARMUP, from a callback, with torch.cuda.synchronize() at both ends.
usage: python3 bench/hf_trainer_bench.py [steps=80] [warmup=10]
"""
import sys, time
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments, TrainerCallback

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 80
warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 10
B, T = 4, 2048
cfg = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                  num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
                  rms_norm_eps=1e-5)
torch.manual_seed(0)
model = LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa", torch_dtype=torch.float32)


class Blocks(torch.utils.data.Dataset):
    def __init__(self, n):
        g = torch.Generator().manual_seed(1)
        self.ids = torch.randint(3, 32000, (n, T), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


class Timer(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == warmup:
            torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); self.t0 = time.perf_counter()
        if state.global_step == steps:
            torch.cuda.synchronize(); self.t1 = time.perf_counter()


timer = Timer()
args = TrainingArguments(output_dir="/tmp/hf-bench", per_device_train_batch_size=B, max_steps=steps,
                         bf16=True, optim="adamw_torch_fused", learning_rate=4e-4, warmup_steps=30,
                         lr_scheduler_type="cosine", weight_decay=0.1, max_grad_norm=1.0,
                         logging_steps=1000, save_strategy="no", report_to=[], dataloader_num_workers=2,
                         disable_tqdm=True)
Trainer(model=model, args=args, train_dataset=Blocks(B * steps), callbacks=[timer]).train()
sec = timer.t1 - timer.t0
tps = B * T * (steps - warmup) / sec
n = sum(p.numel() for p in model.parameters()) - cfg.vocab_size * cfg.hidden_size  # as Hanlin's Mfu: no input embedding
flops = 6 * n + 6 * cfg.num_hidden_layers * T * cfg.hidden_size
print(f"RESULT hf-trainer transformers-{transformers.__version__} tokens_per_s={tps:.0f} "
      f"mfu={tps * flops / 989e12:.3f} peak_alloc_gib={torch.cuda.max_memory_allocated() / 2**30:.2f} "
      f"steps_timed={steps - warmup}")
