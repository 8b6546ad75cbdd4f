#!/usr/bin/env bash
# Issue 16's 7B LoRA row (Llama-2-7B shape, LoRA r=8 on all seven projections, dropout 0.05, gradient
# checkpointing, batch 1 x 2048, bench/sft-lora-7b.yaml), one part per device call:
#   ab     Hanlin with the jars in .gpu/lib-old (before), then .gpu/lib (after), then HF Trainer + PEFT
#          (bench/hf_trainer_bench.py --preset llama2-7b), one after the other on the same card:
#          tokens/s of each and the ratios (the peer in the same call, as bench/README.md asks)
#   row    only .gpu/lib's Hanlin and HF + PEFT (bench/gpu-fused.sh lora: its JSON rows and table)
# Every Hanlin run takes the levers of bench/gpu-fused.sh (loss_chunk_tokens=4096, explicit_backward)
# and HANLIN_SET; tokens/s are timed as bench/vs-hf.sh times them (steps after the 5th).
# Carry .device/gpu-java, .device/rt.count, .gpu/lib, .gpu/lib-old (ab), .gpu/sft-long.jsonl,
# .gpu/tokenizer.model, .gpu/poetry.txt.gz; results under $OUT/gpu-lora.
set -u
part=${1:?ab|row}
export PYTHONUNBUFFERED=1 TOKENIZER=${TOKENIZER:-.gpu/tokenizer.model}
out=${OUT:-/tmp}/gpu-lora
work=/tmp/gpu-lora-work
steps=${STEPS:-30}
mkdir -p "$out" "$work"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1
date -u +"%Y-%m-%d %H:%M UTC"
python3 - "$work/long.jsonl" <<'PY'
import gzip, json, sys
text = gzip.open('.gpu/poetry.txt.gz', 'rt', encoding='utf-8').read()
with open(sys.argv[1], 'w', encoding='utf-8') as f:
    for i in range(0, 4000 * 64, 4000):  # as bench/vs-hf.sh lora7b: each text > 2048 tokens
        f.write(json.dumps({'text': text[i:i + 4000]}, ensure_ascii=False) + '\n')
PY
levers="loss_chunk_tokens=4096 explicit_backward=true ${HANLIN_SET:-}"
# hanlin NAME LIB: one 7B LoRA run with the jars in LIB, its tokens/s line
hanlin() {
  local name=$1 lib=$2
  local sets=(); for kv in $levers; do sets+=(--set "$kv"); done
  rm -rf "$work/$name"
  timeout 300 .device/gpu-java -Xmx100g --enable-native-access=ALL-UNNAMED ${HANLIN_JAVA_OPTS:-} \
    -cp "$lib/*" dev.hanlin.cli.Main --mode sft --config bench/sft-lora-7b.yaml --set max_steps=$steps \
    --set train_files="[$work/long.jsonl]" --set output_dir="$work/$name" --set logging_steps=5 \
    --set tokenizer="$TOKENIZER" "${sets[@]}" 2>&1 | tr '\r' '\n' \
    | grep -E "LoRA|explicit|peak|rror|xception" | tail -4
  python3 - "$work/$name" "$name" <<'PY' | tee -a "$out/rows.txt"
import json, statistics, sys
rows = [json.loads(l) for l in open(f"{sys.argv[1]}/metrics.jsonl") if '"train"' in l]
steady = [r for r in rows if r["step"] > 5]
tps = sum(r["tokens"] for r in steady) / sum(r["seconds"] for r in steady)
mfu = tps * statistics.mean(r["mfu"] / r["tokens_per_second"] for r in steady)
ms = 1000 * sum(r["seconds"] for r in steady) / len(steady)
print(f"RESULT hanlin {sys.argv[2]} tokens_per_s={tps:.0f} mfu={mfu:.3f} ms_per_step={ms:.1f} "
      f"steps_timed={len(steady)} last_loss={rows[-1]['loss']:.4f}")
PY
}
hf() {
  timeout 300 python3 bench/hf_trainer_bench.py --preset llama2-7b --steps $steps --warmup 5 \
    --jsonl "$work/long.jsonl" --tokenizer "$TOKENIZER" --losses "$work/hf-losses.jsonl" 2>&1 \
    | grep -E "RESULT|Error" | sed 's/^RESULT/RESULT hf+peft/' | tee -a "$out/rows.txt"
}
ratios() {
  python3 - "$out/rows.txt" <<'PY'
import re, sys
rows = {}
for l in open(sys.argv[1]):
    m = re.search(r"RESULT (hanlin \S+|hf\+peft).*?tokens_per_s=(\d+)", l)
    if m: rows[m.group(1)] = int(m.group(2))
hf = [v for k, v in rows.items() if k.startswith("hf")]
for k, v in rows.items():
    print(f"{k:24s} {v:7d} tokens/s" + (f"   {v / hf[-1]:.3f}x HF + PEFT" if hf else ""))
PY
}
case $part in
  ab)
    hanlin before .gpu/lib-old
    hanlin after .gpu/lib
    hf
    ratios ;;
  row)
    hanlin after .gpu/lib
    hf
    ratios ;;
  *) echo "part: ab | row" >&2; exit 2 ;;
esac
