#!/usr/bin/env bash
# Issue 15 items 4-6 on the device machine, in one call:
#  1. the memory plan of full SFT of the Llama-2-7B shape (bench/llama2-7b.json, random init), seq 2048,
#     micro-batch 1, gradient checkpointing, on 1 GPU (--mode memory: every zero stage, with and without
#     offload), then that run with offload_optimizer: cpu (bf16 model on the GPU, fp32 masters and AdamW
#     state in pinned host memory, CPU fused AdamW): tokens/s per step and the measured CUDA peak beside
#     the printed plan;
#  2. on 2 GPUs (skipped with fewer): Llama-2-7B pretraining with ZeRO-2 (bench/pretrain-7b-zero.yaml's
#     shape and batch), overlap_comm false (one blocking reduce per weight) vs true (buckets of
#     reduce_bucket_size elements, reduced asynchronously while backward goes on): tokens/s (median of
#     steps 3..STEPS) and peak memory per GPU.
# Carry .gpu/lib (the jars), .gpu/tokenizer.model (Llama 2's), .gpu/sft-long.jsonl
# (python3 bench/tools/make_sft_long.py) and .gpu/poetry.txt.gz (bench/tools/make_poetry_corpus.py).
# Output: $OUT/offload-*.log, $OUT/zero2-*.log and the summary on stdout. ~8 min on one H200
# (7B random init in fp32 on the GPU, 6 offloaded steps of ~10-30 s of CPU AdamW each). The host needs
# ~12 bytes per parameter for the offloaded state (81 GB at 7B) beside the JVM heap (-Xmx16g).
set -u
OUT=${OUT:-/tmp/gpu-offload}
STEPS=${STEPS:-6}
mkdir -p "$OUT"
JAVA=${JAVA:-".device/gpu-java -Xmx16g"}
j() { $JAVA --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" dev.hanlin.cli.Main "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
echo "host: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB memory"
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)

cat > "$OUT/sft-offload-7b.yaml" <<YAML
model_config: $PWD/bench/llama2-7b.json
tokenizer: $PWD/.gpu/tokenizer.model
train_files: [$PWD/.gpu/sft-long.jsonl]
block_size: 2048
sft: {format: text}
output_dir: /tmp/sft-offload-7b
overwrite_output_dir: true
max_steps: $STEPS
per_device_train_batch_size: 1
gradient_checkpointing: true
learning_rate: 2.0e-5
warmup_steps: 1
bf16: true
offload_optimizer: cpu
device: cuda
logging_steps: 1
save_steps: 0
max_eval_batches: 1
YAML

echo "== memory plan (no training)"
j --mode memory --config "$OUT/sft-offload-7b.yaml" --world 1 2>&1 | tee "$OUT/memory-plan.txt"

echo "== 7B full SFT, offload_optimizer: cpu, 1 GPU, $STEPS steps"
t0=$(date +%s)
j --mode sft --config "$OUT/sft-offload-7b.yaml" > "$OUT/offload-7b.log" 2>&1
echo "status $? after $(( $(date +%s) - t0 )) s"
tr '\r' '\n' < "$OUT/offload-7b.log" | grep -v '^\s*$' \
  | grep -E 'offload_optimizer|memory plan|total|step [0-9]+/|peak CUDA|rror|xception' | tail -16
rm -rf /tmp/sft-offload-7b # the final export and checkpoint (~40 GB)

if [ "$gpus" -lt 2 ]; then
  echo "== ZeRO-2 bucketed vs unbucketed: skipped, this machine has $gpus GPU"
  exit 0
fi
for overlap in false true; do
  sed -e "s|^output_dir: .*|output_dir: /tmp/zero2-$overlap|" -e "s|^max_steps: .*|max_steps: $((STEPS + 2))|" \
    -e "s|^tokenizer: .*|tokenizer: $PWD/.gpu/tokenizer.model|" -e "s|^train_files: .*|train_files: [$PWD/.gpu/poetry.txt.gz]|" \
    bench/pretrain-7b-zero.yaml > "$OUT/zero2-$overlap.yaml"
  echo "overlap_comm: $overlap" >> "$OUT/zero2-$overlap.yaml"
  echo "== 7B pretraining, 2 GPUs, ZeRO-2, overlap_comm $overlap"
  bin/launch --nproc-per-node 2 --master-port $((29700 + ${#overlap})) -- \
    $JAVA --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" dev.hanlin.cli.Main \
    --mode pretrain --config "$OUT/zero2-$overlap.yaml" > "$OUT/zero2-$overlap.log" 2>&1
  echo "status $?"
  grep -E 'memory plan|peak CUDA|rror' "$OUT/zero2-$overlap.log" | tail -4
  python3 - "/tmp/zero2-$overlap/metrics.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tps = [r["tokens_per_second"] for r in rows if r.get("type") == "train" and r["step"] > 2]
print(f"tokens/s (2 GPUs, median of steps 3..): {statistics.median(tps):,.0f}; per GPU {statistics.median(tps) / 2:,.0f}")
PY
  rm -rf "/tmp/zero2-$overlap"
done
