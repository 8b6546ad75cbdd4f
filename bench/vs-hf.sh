#!/usr/bin/env bash
# Issue 8: Hanlin's trainer against transformers' Trainer, one after the other on the same GPU, the
# same random-init model on the same token data, bf16, sdpa, fused AdamW, seq 2048:
#   bash bench/vs-hf.sh tinyllama   # TinyLlama-1.1B shape, full training, batch 4, 100 steps
#   bash bench/vs-hf.sh lora7b      # Llama-2-7B shape, LoRA r=8 on all 7 projections, batch 1
# Prints, for both: tokens/s, MFU (6 N + 6 L T d per token, N without the input embedding, against
# 989 TFLOP/s, H100 SXM dense bf16), peak allocated GPU memory, and the ratio; and the mean loss of
# each 10 steps side by side. Needs (bench/README.md): the GPU Java runtime (.device/gpu-java), the
# project's jars in .gpu/lib, .gpu/poetry.txt.gz, test-data/assets/tokenizer/tokenizer.model (or
# TOKENIZER=path). HANLIN_JAVA_OPTS and HANLIN_SET (extra --set k=v) vary the Hanlin side.
set -u
preset=${1:-tinyllama}
export PYTHONUNBUFFERED=1
tok=${TOKENIZER:-test-data/assets/tokenizer/tokenizer.model}
work=${WORK:-/tmp/vs-hf-$preset}
mkdir -p "$work"
j() { .device/gpu-java -Xmx100g --enable-native-access=ALL-UNNAMED ${HANLIN_JAVA_OPTS:-} -cp ".gpu/lib/*" "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader -i "${CUDA_VISIBLE_DEVICES:-0}" | head -1
sets=()
for kv in ${HANLIN_SET:-}; do sets+=(--set "$kv"); done
if [ "$preset" = tinyllama ]; then
  steps=100
  j dev.hanlin.cli.Main --mode pretrain --config bench/pretrain-tinyllama.yaml --set max_steps=$steps \
    --set eval_steps=0 --set max_eval_batches=2 --set logging_steps=10 --set data_dir=$work/data \
    --set output_dir=$work/hanlin --set overwrite_output_dir=true --set train_files='[.gpu/poetry.txt.gz]' \
    --set tokenizer=$tok "${sets[@]}" 2>&1 | tr '\r' '\n' | grep -E "^step (50|100)/|peak|rror|xception" | tail -5
  python3 bench/hf_trainer_bench.py --preset tinyllama --steps $steps --warmup 10 --data $work/data \
    --losses $work/hf-losses.jsonl 2>&1 | grep -E "RESULT|Error" | tee $work/hf.out
else
  steps=30
  python3 - "$work/long.jsonl" <<'PY'
import gzip, json, sys
text = gzip.open('.gpu/poetry.txt.gz', 'rt', encoding='utf-8').read()
with open(sys.argv[1], 'w', encoding='utf-8') as f:
    for i in range(0, 4000 * 64, 4000):  # ~4000 characters make more than 2048 tokens
        f.write(json.dumps({'text': text[i:i + 4000]}, ensure_ascii=False) + '\n')
PY
  j dev.hanlin.cli.Main --mode sft --config bench/sft-lora-7b.yaml --set max_steps=$steps \
    --set train_files="[$work/long.jsonl]" --set output_dir=$work/hanlin --set logging_steps=10 \
    --set tokenizer=$tok "${sets[@]}" 2>&1 | tr '\r' '\n' | grep -E "LoRA|^step (10|30)/|peak|rror|xception" | tail -5
  python3 bench/hf_trainer_bench.py --preset llama2-7b --steps $steps --warmup 5 --jsonl $work/long.jsonl \
    --tokenizer $tok --losses $work/hf-losses.jsonl 2>&1 | grep -E "RESULT|Error" | tee $work/hf.out
fi
python3 - "$work" "$preset" <<'PY'
import json, statistics, sys
work, preset = sys.argv[1], sys.argv[2]
skip = 10 if preset == "tinyllama" else 5
rows = [json.loads(l) for l in open(f"{work}/hanlin/metrics.jsonl") if '"train"' in l]
steady = [r for r in rows if r["step"] > skip]
tps = sum(r["tokens"] for r in steady) / sum(r["seconds"] for r in steady)  # as the HF side: tokens / time
mfu = tps * statistics.mean(r["mfu"] / r["tokens_per_second"] for r in steady)
print(f"RESULT hanlin preset={preset} tokens_per_s={tps:.0f} mfu={mfu:.3f} steps_timed={len(steady)}")
import re
m = re.search(r"tokens_per_s=(\d+)", open(f"{work}/hf.out").read())
if m:
    print(f"RESULT ratio preset={preset} hanlin/hf-trainer={tps / int(m.group(1)):.3f}")
hf = [json.loads(l) for l in open(f"{work}/hf-losses.jsonl")]
print("loss, mean of each 10 steps:  step  hanlin  hf-trainer")
for h in hf:
    mine = [r["loss"] for r in rows if h["step"] - 10 < r["step"] <= h["step"]]
    if mine:
        print(f"                              {h['step']:4d}  {statistics.mean(mine):.4f}  {h['loss']:.4f}")
PY
