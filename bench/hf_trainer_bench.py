#!/usr/bin/env python3
"""transformers' Trainer, the peer that Hanlin's trainer is measured against (issue 8).

Pinned settings, matching bench/pretrain-tinyllama.yaml and bench/sft-lora-7b.yaml:
  tinyllama  TinyLlama-1.1B shape, random init in fp32, Trainer bf16=True (autocast, fp32 master
             weights), sdpa attention, adamw_torch_fused, per-device batch 4, sequence 2048, no
             accumulation, max_grad_norm 1.0, lr 4e-4, 30 warmup steps, cosine to min_lr 4e-5, weight decay 0.1,
             AdamW betas (0.9, 0.95), eps 1e-8.
  llama2-7b  Llama-2-7B shape, random init, base weights in bf16 and frozen, PEFT LoRA r=8 alpha=16
             dropout 0.05 on q,k,v,o,gate,up,down, gradient checkpointing (non-reentrant), batch 1,
             sequence 2048, lr 2e-4, 2 warmup steps, cosine to 0, betas (0.9, 0.95), adamw_torch_fused, bf16=True.
Tokens: with --jsonl FILE --tokenizer MODEL, each line's text as Hanlin's sft `text` format makes
it (BOS + SentencePiece ids + EOS, truncated to 2048); with --data DIR, the train shards that Hanlin's `prepare` wrote there (the same token
windows of 2049 tokens Hanlin trains on, in the Trainer's own shuffled order); otherwise random ids.
Throughput is timed over the steps after the first WARMUP, from a callback, with
torch.cuda.synchronize() at both ends. The loss is logged every --logging-steps steps (the mean
over those steps, as the Trainer logs it) to --losses FILE as JSON lines.
MFU = tokens/s x (6 N + 6 L T d) / 989e12, N the parameters without the input embedding (Hanlin's
formula); for LoRA N counts the frozen base too, so it is the same yardstick on both sides.
usage: python3 bench/hf_trainer_bench.py [--preset tinyllama|llama2-7b] [--steps 80] [--warmup 10]
       [--data DIR] [--losses FILE]
"""
import argparse, glob, json, os, struct, sys, time
import numpy as np
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments, TrainerCallback

ap = argparse.ArgumentParser()
ap.add_argument("--preset", default="tinyllama", choices=["tinyllama", "llama2-7b"])
ap.add_argument("--steps", type=int, default=80)
ap.add_argument("--warmup", type=int, default=10)
ap.add_argument("--data", default=None)
ap.add_argument("--jsonl", default=None, help="texts (the 'text' field), as Hanlin's sft format text reads them")
ap.add_argument("--tokenizer", default=None, help="the tokenizer.model Hanlin used, for --jsonl")
ap.add_argument("--losses", default=None)
ap.add_argument("--logging-steps", type=int, default=10)
a = ap.parse_args()
lora = a.preset == "llama2-7b"
T = 2048
B = 1 if lora else 4
if lora:
    cfg = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                      rms_norm_eps=1e-5)
else:
    cfg = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                      num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
                      rms_norm_eps=1e-5)
torch.manual_seed(0)
with torch.device("cuda"):  # initialized on the GPU: minutes faster for 7B, the same model class
    model = LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa",
                                          torch_dtype=torch.bfloat16 if lora else torch.float32)
n = sum(p.numel() for p in model.parameters()) - cfg.vocab_size * cfg.hidden_size  # no input embedding
if lora:
    from peft import LoraConfig, get_peft_model
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                             "gate_proj", "up_proj", "down_proj"]))


def hanlin_windows(folder):
    """Token windows of T+1 from the train shards of a Hanlin data folder (ShardFormat.java)."""
    parts = []
    for f in sorted(glob.glob(os.path.join(folder, "shards", "*.train.*.tok"))):
        with open(f, "rb") as fh:
            head = fh.read(256)
        assert head[:8] == b"HANLINTK", f
        width, count = struct.unpack_from("<iq", head, 12)
        dt = np.uint16 if width == 2 else np.uint32
        parts.append(np.fromfile(f, dtype=dt, count=count, offset=256).astype(np.int64))
    if not parts:
        sys.exit(f"no train shards in {folder}/shards")
    toks = np.concatenate(parts)
    w = (len(toks) - 1) // T
    return torch.from_numpy(toks[: w * T + 1]), w


class Rows(torch.utils.data.Dataset):
    def __init__(self):
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=a.tokenizer)
        texts = [json.loads(l)["text"] for l in open(a.jsonl, encoding="utf-8")]
        self.rows = [torch.tensor(([sp.bos_id()] + sp.encode(t) + [sp.eos_id()])[:T]) for t in texts]
        assert all(len(r) == T for r in self.rows), "every text must make at least 2048 tokens"

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return {"input_ids": self.rows[i], "labels": self.rows[i]}


class Blocks(torch.utils.data.Dataset):
    def __init__(self, n):
        if a.data:
            self.toks, self.n = hanlin_windows(a.data)
        else:
            g = torch.Generator().manual_seed(1)
            self.toks, self.n = torch.randint(3, 32000, (n * T + 1,), generator=g), n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        ids = self.toks[i * T: i * T + T]  # the model shifts labels: targets are ids[1:]
        return {"input_ids": ids, "labels": ids}


class Timer(TrainerCallback):
    losses = []

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == a.warmup:
            torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); self.t0 = time.perf_counter()
        if state.global_step == a.steps:
            torch.cuda.synchronize(); self.t1 = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self.losses.append({"step": state.global_step, "loss": logs["loss"]})


timer = Timer()
args = TrainingArguments(output_dir="/tmp/hf-bench", per_device_train_batch_size=B, max_steps=a.steps,
                         bf16=True, optim="adamw_torch_fused", learning_rate=2e-4 if lora else 4e-4,
                         warmup_steps=2 if lora else 30,
                         lr_scheduler_type="cosine" if lora else "cosine_with_min_lr",
                         lr_scheduler_kwargs={} if lora else {"min_lr": 4e-5},
                         adam_beta1=0.9, adam_beta2=0.95, adam_epsilon=1e-8,  # Hanlin's defaults
                         weight_decay=0.0 if lora else 0.1, max_grad_norm=1.0,
                         logging_steps=a.logging_steps, save_strategy="no", report_to=[],
                         dataloader_num_workers=2, disable_tqdm=True)
data = Rows() if a.jsonl else Blocks(B * a.steps)
Trainer(model=model, args=args, train_dataset=data, callbacks=[timer]).train()
sec = timer.t1 - timer.t0
tps = B * T * (a.steps - a.warmup) / sec
flops = 6 * n + 6 * cfg.num_hidden_layers * T * cfg.hidden_size
if a.losses:
    with open(a.losses, "w") as f:
        for r in timer.losses:
            f.write(json.dumps(r) + "\n")
print(f"RESULT hf-trainer preset={a.preset} transformers-{transformers.__version__} tokens_per_s={tps:.0f} "
      f"mfu={tps * flops / 989e12:.3f} peak_alloc_gib={torch.cuda.max_memory_allocated() / 2**30:.2f} "
      f"steps_timed={a.steps - a.warmup} last_logged_loss={timer.losses[-1]['loss'] if timer.losses else 'nan'}")
