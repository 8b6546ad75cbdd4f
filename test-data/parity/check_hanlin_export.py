#!/usr/bin/env python3
"""Loads Hanlin-saved HF folders with transformers and compares logits with Hanlin's own.

Each folder (written by dev.hanlin.bench.ExportForTransformers) holds config.json, sharded
safetensors with an index, and hanlin_logits.safetensors (input_ids, logits computed by Hanlin).
usage: python3 check_hanlin_export.py EXPORT_DIR
"""
import json, os, sys
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

root = sys.argv[1]
worst = 0.0
for name in sorted(os.listdir(root)):
    d = os.path.join(root, name)
    model, info = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    ref = load_file(os.path.join(d, "hanlin_logits.safetensors"))
    with torch.no_grad():
        logits = model.eval()(ref["input_ids"]).logits
    diff = (logits - ref["logits"]).abs().max().item()
    worst = max(worst, diff)
    print(f"RESULT hanlin->transformers {name}: max_abs_dlogits={diff:.3g} loading_info_problems={problems}")
print(f"RESULT hanlin->transformers worst={worst:.3g}")
sys.exit(0 if worst <= 1e-4 else 1)
