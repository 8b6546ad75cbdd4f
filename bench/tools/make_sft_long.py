#!/usr/bin/env python3
"""Writes .gpu/sft-long.jsonl: 60 SFT text records of 4,000 characters of the demo's Song ci (each more
than 2,048 Llama 2 tokens), for the seq-2048 LoRA benchmarks (bench/gpu-qlora.sh)."""
import json, os
text = open("configs/demo/songci.txt", encoding="utf-8").read().replace("\n", "")
os.makedirs(".gpu", exist_ok=True)
with open(".gpu/sft-long.jsonl", "w", encoding="utf-8") as f:
    for i in range(60):
        f.write(json.dumps({"text": text[i * 4000:(i + 1) * 4000]}, ensure_ascii=False) + "\n")
