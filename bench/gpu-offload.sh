#!/usr/bin/env bash
# Issue 15 items 4-6 on the device machine, in one call:
#  0. FusedAdamWDeviceGpuTest (tag gpu): the CPU AdamW kernel with the clip scale and skip flag from the GPU
#     (offload's case), through the JUnit console launcher, when .gpu/kernel-tests is there
#     (bash bench/gpu-kernels.sh prepare puts native-bindings' test classes there);
#  1. the memory plan of full SFT of the Llama-2-7B shape (bench/llama2-7b.json, random init), seq 2048,
#     micro-batch 1, gradient checkpointing, on 1 GPU (--mode memory: every zero stage, with and without
#     offload), then that run with offload_optimizer: cpu (bf16 model on the GPU, fp32 masters and AdamW
#     state in pinned host memory, CPU fused AdamW), once per PIPELINES value (default "true false":
#     offload_optimizer_pipeline on, the CPU update overlapping the next forward, then off): tokens/s per
#     step (median of steps 2..), the printed plan's total and the measured CUDA peak beside it.
#     save_strategy: no: no resumable checkpoint (81 GB of fp32 state at 7B, more than the machine's
#     64 GB disk), only the final bf16 export (13.5 GB), removed after each run;
#  2. on 2 GPUs (skipped with fewer): Llama-2-7B pretraining with ZeRO-2 (bench/pretrain-7b-zero.yaml's
#     shape and batch), overlap_comm false (one blocking reduce per weight) vs true (buckets of
#     reduce_bucket_size elements, reduced asynchronously while backward goes on): tokens/s (median of
#     steps 3..STEPS) and peak memory per GPU.
# Carry .gpu/lib (the jars), .gpu/tokenizer.model (Llama 2's), .gpu/sft-long.jsonl
# (python3 bench/tools/make_sft_long.py) and .gpu/poetry.txt.gz (bench/tools/make_poetry_corpus.py).
# Output: $OUT/offload-*.log, $OUT/zero2-*.log and the summary on stdout. Not yet timed as a whole: the
# last run (STEPS=4, before the pipeline) trained its 4 steps in 33 s after setup (fp32 random init on
# the GPU, masters to pinned host), ~5.4 s a step of CPU AdamW; an estimated 2-3 min per 7B run with
# its final evaluation and export, so both PIPELINES values in one 10-minute call. If it runs short of
# time, PIPELINES=true (or false) runs one.
# The host needs ~12 bytes per parameter for the offloaded state (81 GB at 7B) beside the JVM heap
# (-Xmx16g).
set -u
OUT=${OUT:-/tmp/gpu-offload}
STEPS=${STEPS:-5}
PIPELINES=${PIPELINES:-true false}
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
save_strategy: "no"
max_eval_batches: 1
YAML

echo "== memory plan (no training)"
j --mode memory --config "$OUT/sft-offload-7b.yaml" --world 1 2>&1 | tee "$OUT/memory-plan.txt"

if [ -d .gpu/kernel-tests ]; then
  echo "== FusedAdamWDeviceGpuTest (host AdamW, clip scale and skip flag from the GPU)"
  JUNIT=$(ls .gpu/junit-platform-console-standalone-*.jar 2>/dev/null | head -1)
  .device/gpu-java -cp ".gpu/kernel-tests:.gpu/lib/*:$JUNIT" org.junit.platform.console.ConsoleLauncher \
    execute --disable-banner --disable-ansi-colors --details=tree --include-tag=gpu \
    --select-class=dev.hanlin.torch.optim.FusedAdamWDeviceGpuTest 2>&1 | grep -vE "^\s*$|WARNING" | tail -12
fi

for pipe in $PIPELINES; do
  echo "== 7B full SFT, offload_optimizer: cpu, offload_optimizer_pipeline: $pipe, 1 GPU, $STEPS steps"
  cp "$OUT/sft-offload-7b.yaml" "$OUT/sft-offload-7b-$pipe.yaml"
  echo "offload_optimizer_pipeline: $pipe" >> "$OUT/sft-offload-7b-$pipe.yaml"
  t0=$(date +%s)
  j --mode sft --config "$OUT/sft-offload-7b-$pipe.yaml" > "$OUT/offload-7b-$pipe.log" 2>&1
  echo "status $? after $(( $(date +%s) - t0 )) s"
  tr '\r' '\n' < "$OUT/offload-7b-$pipe.log" | grep -v '^\s*$' \
    | grep -E 'offload_optimizer|step [0-9]+/|checkpoint|exported|rror|xception' | tail -12
  python3 - /tmp/sft-offload-7b/metrics.jsonl <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
tps = [r["tokens_per_second"] for r in rows if r["step"] > 1]
if tps: print(f"tokens/s (median of steps 2..): {statistics.median(tps):,.0f}; seconds/step {2048 / statistics.median(tps):.2f}")
PY
  echo "-- the plan's total and the measured peak:"
  grep -E '^  total|peak CUDA memory|^memory plan: ' "$OUT/offload-7b-$pipe.log" | tail -3
  ls /tmp/sft-offload-7b | grep -c '^checkpoint-' | sed 's/^/checkpoint folders (save_strategy: no, expect 0): /'
  rm -rf /tmp/sft-offload-7b # the final export (~13.5 GB)
done

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
