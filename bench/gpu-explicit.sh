#!/usr/bin/env bash
# Issue 16 on one GPU: first the explicit backward against autograd's on the tiny parity models
# (ExplicitGpuCheck: CUDA flash attention for causal bf16 rows, memory-efficient attention for fp32
# and packed rows, all through the dispatcher — never run on a GPU before this script); then
# TinyLlama-1.1B pretraining (bench/pretrain-tinyllama.yaml, as levers.sh) with explicit_backward
# false and true, with and without gradient checkpointing: tokens/s over steps 11-60, MFU, peak memory
# and the loss every 10 steps side by side. Run from the project root with .gpu/lib (the jars, built
# with -Pbench) and .gpu/poetry.txt.gz (bench/README.md).
set -u
tok=${TOKENIZER:-test-data/assets/tokenizer/tokenizer.model}
work=${WORK:-/tmp/explicit}
mkdir -p "$work"
j() { .device/gpu-java -Xmx64g --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
j dev.hanlin.bench.ExplicitGpuCheck test-data/parity cuda 2>&1 | grep -E "RESULT|rror|xception"
run() { # name, --set k=v...
  local name=$1; shift
  local sets=(); for kv in "$@"; do sets+=(--set "$kv"); done
  j dev.hanlin.cli.Main --mode pretrain --config bench/pretrain-tinyllama.yaml --set max_steps=${STEPS:-60} \
    --set eval_steps=0 --set max_eval_batches=1 --set logging_steps=10 --set data_dir=$work/data \
    --set output_dir=$work/$name --set overwrite_output_dir=true --set train_files='[.gpu/poetry.txt.gz]' \
    --set tokenizer=$tok "${sets[@]}" 2>&1 | tr '\r' '\n' | grep -E "explicit_backward|peak CUDA|rror|xception" \
    | sed "s/^/$name: /"
  python3 - "$work/$name/metrics.jsonl" "$name" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
s = [r for r in rows if r["step"] > 10]
tps = sum(r["tokens"] for r in s) / sum(r["seconds"] for r in s)
mfu = tps * statistics.mean(r["mfu"] / r["tokens_per_second"] for r in s)
print(f"EXPLICIT {sys.argv[2]:<20} tokens_per_s={tps:.0f} mfu={mfu:.3f} loss@end={rows[-1]['loss']:.4f}")
PY
}
run autograd explicit_backward=false
run explicit explicit_backward=true
run autograd-ckpt explicit_backward=false gradient_checkpointing=true
run explicit-ckpt explicit_backward=true gradient_checkpointing=true
python3 - "$work" <<'PY'
import json, sys
def losses(n): return {json.loads(l)["step"]: json.loads(l)["loss"] for l in open(f"{sys.argv[1]}/{n}/metrics.jsonl") if '"train"' in l}
a, b = losses("autograd"), losses("explicit")
print("step  autograd  explicit")
for k in sorted(a):
    if k % 10 == 0 and k in b: print(f"{k:4d}  {a[k]:.4f}    {b[k]:.4f}")
PY
