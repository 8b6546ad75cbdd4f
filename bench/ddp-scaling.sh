#!/usr/bin/env bash
# Data-parallel scaling of TinyLlama-1.1B pretraining (issue 7): tokens/s per GPU on 1, 2 and 4
# GPUs, one JVM per GPU started by bin/launch, gradients averaged by the c10d Reducer over NCCL.
# Every GPU takes 4 x 2048 tokens per step (bf16 model, fp32 master weights in fused AdamW; MASTER=false:
# bf16 autocast over fp32 weights), so
# the global batch grows with the GPU count; efficiency = per-GPU tokens/s on N GPUs / on 1 GPU.
# The median over steps 6..STEPS is used (the first steps warm up cuBLAS and the allocator).
#
#   bench/ddp-scaling.sh [COUNTS...]        default: 1 2 4, capped at the GPUs nvidia-smi shows
#   bench/ddp-scaling.sh 7b [N]             per-GPU peak memory of Llama-2-7B full training on N
#                                           GPUs (default 4) with zero_stage $ZERO (default 1; 2
#                                           also shards the gradients) and gradient_checkpointing,
#                                           1 x 2048 tokens per GPU
#
# Environment: JAVA_CMD (default ".device/gpu-java -Xmx24g", the device machine's runtime; on a
# machine with its own CUDA build of the JavaCPP natives: "java -Xmx24g
# -Dorg.bytedeco.javacpp.platform.extension=-gpu"), LIB (folder of the trainer's jars, default
# .gpu/lib), TEXT (a corpus, default .gpu/poetry.txt.gz), TOKENIZER (default
# .gpu/tok/tokenizer.model), STEPS (default 30), ZERO (the 7b run's zero_stage, default 1), WORK
# (default /tmp/ddp-scaling), RESULTS (a folder for the table and logs, default $OUT or WORK).
set -uo pipefail
cd "$(dirname "$0")/.."
JAVA_CMD=${JAVA_CMD:-".device/gpu-java -Xmx24g"}
LIB=${LIB:-.gpu/lib}
TEXT=${TEXT:-.gpu/poetry.txt.gz}
TOKENIZER=${TOKENIZER:-.gpu/tok/tokenizer.model}
STEPS=${STEPS:-30}
WORK=${WORK:-/tmp/ddp-scaling}
RESULTS=${RESULTS:-${OUT:-$WORK}}
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 2 4)
mkdir -p "$WORK" "$RESULTS"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1 | sed 's/^/GPU: /'

cat > "$WORK/run.yaml" <<YAML
model_config: $PWD/bench/tinyllama.json
tokenizer: $PWD/$TOKENIZER
train_files: [$PWD/$TEXT]
validation_split_percentage: 1
data_dir: $WORK/data
block_size: 2048
max_steps: 100000
stop_after_steps: $STEPS
per_device_train_batch_size: 4
gradient_accumulation_steps: 1
learning_rate: 4.0e-4
warmup_steps: 10
weight_decay: 0.1
device: cuda
logging_steps: 5
eval_steps: 0
save_steps: 0
overwrite_output_dir: true
dist_timeout_seconds: 600
master_weights: ${MASTER:-true}
YAML

if [ "${1:-}" = 7b ]; then
  n=${2:-4}
  out="$WORK/out-7b"
  sed -e 's/^per_device_train_batch_size: .*/per_device_train_batch_size: 1/' \
    -e 's/^stop_after_steps: .*/stop_after_steps: 6/' -e '/^master_weights:/d' "$WORK/run.yaml" > "$WORK/run-7b.yaml"
  cat >> "$WORK/run-7b.yaml" <<YAML
config_overrides: {hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 4096}
zero_stage: ${ZERO:-1}
gradient_checkpointing: true
output_dir: $out
YAML
  # shellcheck disable=SC2086
  bin/launch --nproc-per-node "$n" --master-port 29650 -- \
    $JAVA_CMD --enable-native-access=ALL-UNNAMED -cp "$LIB/*" dev.hanlin.cli.Main \
    --mode pretrain --config "$WORK/run-7b.yaml" > "$RESULTS/ddp-7b-$n-zero${ZERO:-1}.log" 2>&1
  echo "Llama-2-7B shape, $n GPUs, zero_stage ${ZERO:-1}, gradient checkpointing: status $?"
  grep -E "step [0-9]+/|peak CUDA memory|error" "$RESULTS/ddp-7b-$n-zero${ZERO:-1}.log" | tail -$((n + 4))
  rm -rf "$out"
  exit 0
fi

table="$RESULTS/ddp-scaling.txt"
printf '%-5s %14s %16s %11s\n' GPUs "tokens/s" "tokens/s/GPU" efficiency | tee "$table"
base=${BASE:-} # per-GPU tokens/s on 1 GPU from an earlier run, when 1 is not in COUNTS
for n in "${counts[@]}"; do
  if [ "$n" -gt "$gpus" ]; then
    echo "skipping $n GPUs: this machine has $gpus" | tee -a "$table"
    continue
  fi
  out="$WORK/out-$n"
  { cat "$WORK/run.yaml"; echo "output_dir: $out"; } > "$WORK/run-$n.yaml"
  # shellcheck disable=SC2086
  bin/launch --nproc-per-node "$n" --master-port $((29600 + n)) -- \
    $JAVA_CMD --enable-native-access=ALL-UNNAMED -cp "$LIB/*" dev.hanlin.cli.Main \
    --mode pretrain --config "$WORK/run-$n.yaml" \
    > "$RESULTS/ddp-scaling-$n.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ] || [ ! -f "$out/metrics.jsonl" ]; then
    echo "$n GPUs: the run failed (status $rc); tail of $RESULTS/ddp-scaling-$n.log:" | tee -a "$table"
    tail -20 "$RESULTS/ddp-scaling-$n.log"
    continue
  fi
  python3 - "$out/metrics.jsonl" "$n" "${base:-0}" <<'PY' | tee -a "$table"
import json, statistics, sys
path, n, base = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rows = [json.loads(l) for l in open(path)]
tps = [r["tokens_per_second"] for r in rows if r.get("type") == "train" and r["step"] > 5]
total = statistics.median(tps)
per = total / n
eff = per / base if base > 0 else 1.0
print(f"{n:<5d} {total:14,.0f} {per:16,.0f} {eff:10.1%}")
PY
  if [ -z "$base" ]; then
    base=$(python3 -c "import json,statistics,sys; r=[json.loads(l) for l in open('$out/metrics.jsonl')]; print(statistics.median([x['tokens_per_second'] for x in r if x.get('type')=='train' and x['step']>5]))")
  fi
  rm -rf "$out"/checkpoint-* # 13 GB each
done
