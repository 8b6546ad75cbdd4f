#!/usr/bin/env bash
# One GPU call for the figures the issues ask for, every peer on the same card in the same call:
#  - issue 2: forward+backward of the TinyLlama-1.1B shape, Hanlin vs transformers
#  - issue 5/8: TinyLlama-1.1B pretraining, Hanlin's trainer vs transformers' Trainer (pinned settings)
# Run from the project root on the GPU machine with the jars in .gpu/lib (bench/README.md).
set -u
export PYTHONUNBUFFERED=1
j() { .device/gpu-java -Xmx48g --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
j dev.hanlin.bench.ForwardBackwardBench tinyllama 4 2048 10 3 2>&1 | grep RESULT
python3 bench/fwd_bwd_hf.py tinyllama 4 2048 10 3 2>&1 | grep -E "RESULT|Error"
j dev.hanlin.cli.Main --mode pretrain --config bench/pretrain-tinyllama.yaml --set max_steps=100 \
  --set eval_steps=0 --set max_eval_batches=2 --set data_dir=/tmp/hanlin-data --set output_dir=/tmp/hanlin-bench \
  --set train_files='[.gpu/poetry.txt.gz]' --set tokenizer=.gpu/tok/tokenizer.model 2>&1 | tr '\r' '\n' | grep -E "^step (50|100)/|eval|done|peak|rror"
python3 - <<'PY'
import json, statistics
rows = [json.loads(l) for l in open("/tmp/hanlin-bench/metrics.jsonl") if '"train"' in l]
steady = [r["tokens_per_second"] for r in rows if r["step"] > 10]
mfu = [r["mfu"] for r in rows if r["step"] > 10]
print(f"RESULT hanlin-pretrain tokens_per_s={statistics.mean(steady):.0f} mfu={statistics.mean(mfu):.3f} steps_timed={len(steady)} final_loss={rows[-1]['loss']:.4f}")
PY
python3 bench/hf_trainer_bench.py --steps 100 --warmup 10 2>&1 | grep -E "RESULT|Error"
