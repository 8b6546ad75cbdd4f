#!/usr/bin/env bash
# Issue 5 on the GPU: TinyLlama-1.1B pretraining (bf16 autocast, fp32 masters, fused AdamW) on
# Chinese poetry with the Llama 2 tokenizer; TensorBoard files checked with EventAccumulator;
# fwd+bwd memory re-measured next to transformers.
set -u
export PYTHONUNBUFFERED=1
j() { .device/gpu-java -Xmx48g --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
j dev.hanlin.bench.ForwardBackwardBench tinyllama 4 2048 10 3 2>&1 | grep RESULT
( while sleep 5; do nvidia-smi --query-gpu=memory.used --format=csv,noheader; done ) > $OUT/nvsmi.log 2>&1 &
j dev.hanlin.cli.Main --mode pretrain --config bench/pretrain-tinyllama.yaml 2>&1 | tr '\r' '\n' | grep -v "^\s*$" | grep -vE "WARNING|^prepare " | tail -40
kill %1 2>/dev/null
sort -n $OUT/nvsmi.log | tail -1 | sed 's/^/peak nvidia-smi memory.used: /'
cp /tmp/hanlin-out/metrics.jsonl /tmp/hanlin-out/loss.png /tmp/hanlin-out/config.json $OUT/ 2>/dev/null
python3 test-data/metrics/check_tensorboard.py /tmp/hanlin-out/runs 2>&1 | tail -15
python3 -c "
from transformers import AutoModelForCausalLM, AutoTokenizer; import torch
m = AutoModelForCausalLM.from_pretrained('/tmp/hanlin-out', dtype=torch.bfloat16).cuda(); t = AutoTokenizer.from_pretrained('/tmp/hanlin-out')
ids = t('春眠不觉晓，', return_tensors='pt').input_ids.cuda()
print('transformers loads the export; greedy:', t.decode(m.generate(ids, max_new_tokens=24, do_sample=False)[0]))
" 2>&1 | grep -v Warning | tail -3
ls -la /tmp/hanlin-out
