#!/usr/bin/env bash
# Issue 15 (items 1-3) on the GPUs present (nvidia-smi -L): full training with ZeRO-3 against ZeRO-2.
#   * Llama-2-7B shape (bench/llama2-7b.json, random init), seq 2048, 1 x 2048 tokens per GPU, gradient
#     checkpointing, on 2 GPUs: zero_stage 2 (bf16 autocast, fp32 weights), zero_stage 3 with the same
#     precision, and zero_stage 3 with master_weights (bf16 compute, fp32 sharded masters):
#     tokens/s per GPU (median of steps 3..STEPS) and each rank's peak CUDA memory.
#   * the 13B shape (bench/llama2-13b.json) on 4 GPUs (or as many as there are, >= 2) with zero_stage 3
#     and master_weights.
#   * the TinyLlama 1/2/4-GPU data-parallel scaling table (bench/ddp-scaling.sh, capped at the GPUs here).
#   * single: one GPU, the TinyLlama shape (bench/tinyllama.json), seq 2048: zero_stage 0 against
#     zero_stage 3 (world 1: the CUDA path of ZeRO-3's placeholder model, unit-by-unit setup, gathers
#     into views and the prefetch schedule; no NCCL with one process), with the prefetch on and off
#     (HANLIN_ZERO3_PREFETCH=0), tokens/s and peak; the "setting up held" line is setup's own peak.
#     The 7b part also runs ZeRO-3 with the prefetch off, to measure the overlap on 2 GPUs (NCCL).
# What does not fit this machine is skipped with a line saying so. Results: $OUT/zero3.txt and logs.
# Carry .gpu/lib (the jars), .gpu/tok/tokenizer.model and .gpu/poetry.txt.gz as for gpu-session-x2b.sh.
#   bench/gpu-zero3.sh [7b] [13b] [scaling] [single]   the parts to run (default the first three; one
#                                             device call has 10 minutes, so the lead may run them in
#                                             separate calls)
# Environment: STEPS (default 8), JAVA_CMD (default ".device/gpu-java -Xmx48g").
set -u
cd "$(dirname "$0")/.."
export TOKENIZER=${TOKENIZER:-.gpu/tok/tokenizer.model} PYTHONUNBUFFERED=1
JAVA_CMD=${JAVA_CMD:-".device/gpu-java -Xmx48g"}
LIB=${LIB:-.gpu/lib}
TEXT=${TEXT:-.gpu/poetry.txt.gz}
STEPS=${STEPS:-8}
OUT=${OUT:-/tmp/gpu-zero3-out}
WORK=${WORK:-/tmp/gpu-zero3}
mkdir -p "$OUT" "$WORK"
parts=" ${*:-7b 13b scaling} "
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
table="$OUT/zero3.txt"
printf '%-34s %5s %16s %s\n' run GPUs "tokens/s/GPU" "peak GiB per rank (allocated)" | tee "$table"

# run NAME GPUS MODEL_JSON EXTRA_YAML...: one pretraining run, then its line of the table
run() {
  local name=$1 n=$2 model=$3; shift 3
  if [ "$n" -gt "$gpus" ]; then echo "skipping $name: needs $n GPUs, this machine has $gpus" | tee -a "$table"; return; fi
  local out="$WORK/out-$name" yaml="$WORK/$name.yaml" log="$OUT/$name.log"
  cat > "$yaml" <<YAML
model_config: $PWD/$model
tokenizer: $PWD/$TOKENIZER
train_files: [$PWD/$TEXT]
validation_split_percentage: 1
data_dir: $WORK/data
block_size: 2048
output_dir: $out
overwrite_output_dir: true
max_steps: 100000
stop_after_steps: $STEPS
per_device_train_batch_size: 1
gradient_accumulation_steps: 1
learning_rate: 3.0e-4
warmup_steps: 2
weight_decay: 0.1
device: cuda
bf16: true
gradient_checkpointing: true
logging_steps: 1
eval_steps: 0
save_steps: 0
dist_timeout_seconds: 900
YAML
  printf '%s\n' "$@" >> "$yaml"
  # shellcheck disable=SC2086
  HANLIN_ZERO3_PREFETCH=${PREFETCH:-1} bin/launch --nproc-per-node "$n" --master-port $((29700 + RANDOM % 200)) -- \
    $JAVA_CMD --enable-native-access=ALL-UNNAMED -cp "$LIB/*" dev.hanlin.cli.Main \
    --mode pretrain --config "$yaml" > "$log" 2>&1
  local rc=$?
  local peaks
  peaks=$(grep -o "peak CUDA memory: [0-9.]* GiB allocated" "$log" | awk '{printf "%s ", $4}')
  if [ ! -f "$out/metrics.jsonl" ]; then
    echo "$name: failed (status $rc): $(grep -m1 -iE 'error|exception|out of memory' "$log")" | tee -a "$table"
  else
    python3 - "$out/metrics.jsonl" "$n" "$name" "$peaks" "$rc" <<'PY' | tee -a "$table"
import json, statistics, sys
path, n, name, peaks, rc = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rows = [json.loads(l) for l in open(path) if '"train"' in l]
tps = [r["tokens_per_second"] for r in rows if r["step"] > 2] or [r["tokens_per_second"] for r in rows]
print(f"{name:<34s} {n:5d} {statistics.median(tps) / n:16,.0f} {peaks}" + ("" if rc == "0" else f" (exit {rc})"))
PY
  fi
  grep -E "master_weights|zero|ZeRO" "$log" | grep -v "^\s*$" | head -3
  grep -m1 -iE "exception|error" "$log"
  rm -rf "$out"
}

if [ "$gpus" -lt 2 ]; then
  echo "skipping the 7B and 13B ZeRO-3 runs: this machine has $gpus GPU(s)" | tee -a "$table"
fi
if [ "$gpus" -ge 2 ] && [[ $parts == *" 7b "* ]]; then
  run 7b-zero2 2 bench/llama2-7b.json "zero_stage: 2"
  run 7b-zero3 2 bench/llama2-7b.json "zero_stage: 3"
  PREFETCH=0 run 7b-zero3-noprefetch 2 bench/llama2-7b.json "zero_stage: 3"
  run 7b-zero3-master 2 bench/llama2-7b.json "zero_stage: 3" "master_weights: true"
fi
if [ "$gpus" -ge 2 ] && [[ $parts == *" 13b "* ]]; then
  n13=$(( gpus >= 4 ? 4 : gpus ))
  run 13b-zero3-master-$n13 "$n13" bench/llama2-13b.json "zero_stage: 3" "master_weights: true"
  # the accounting a 13B run needs per GPU on n13 GPUs (bytes per parameter: 2 bf16 gathered units,
  # 4 fp32 master shard, 4 fp32 gradient shard, 8 AdamW moments; shards divide by the GPU count)
  python3 - "$n13" <<'PY' | tee -a "$table"
import sys
n = int(sys.argv[1]); p = 13.016e9; layer = 5120 * 5120 * 4 + 5120 * 13824 * 3
print(f"13B on {n} GPUs, expected: shards {p * 16 / n / 2**30:.1f} GiB + one gathered block {layer * 2 / 2**30:.2f} GiB + activations")
PY
fi
if [[ $parts == *" single "* ]]; then
  run tiny-zero0-1 1 bench/tinyllama.json "zero_stage: 0"
  run tiny-zero3-1 1 bench/tinyllama.json "zero_stage: 3"
  PREFETCH=0 run tiny-zero3-1-noprefetch 1 bench/tinyllama.json "zero_stage: 3"
  run tiny-zero3-1-master 1 bench/tinyllama.json "zero_stage: 3" "master_weights: true"
fi
if [[ $parts == *" scaling "* ]]; then
  WORK=$WORK/sc RESULTS=$OUT bash bench/ddp-scaling.sh 1 2 4
fi
cat "$table"
