#!/usr/bin/env bash
# Issue 8, the levers one by one: Hanlin pretraining the TinyLlama-1.1B shape (batch 4 x 2048, bf16,
# 60 steps, the same data) with one setting changed at a time; tokens/s over steps 11-60 (their tokens / their
# seconds) from metrics.jsonl, peak memory from the trainer's last line. Same setup as bench/vs-hf.sh.
# Issue 16's levers (loss_chunk_tokens, explicit_backward) run when the jars know their keys;
# bench/gpu-fused.sh measures them at micro-batch 4 and 8 beside the compiled loop.
set -u
tok=${TOKENIZER:-test-data/assets/tokenizer/tokenizer.model}
work=${WORK:-/tmp/levers}
mkdir -p "$work"
run() { # name, java options, --set k=v...
  local name=$1 opts=$2; shift 2
  local sets=(); for kv in "$@"; do sets+=(--set "$kv"); done
  .device/gpu-java -Xmx64g --enable-native-access=ALL-UNNAMED $opts -cp ".gpu/lib/*" dev.hanlin.cli.Main \
    --mode pretrain --config bench/pretrain-tinyllama.yaml --set max_steps=60 --set eval_steps=0 \
    --set max_eval_batches=1 --set logging_steps=10 --set data_dir=$work/data --set output_dir=$work/$name \
    --set overwrite_output_dir=true --set train_files='[.gpu/poetry.txt.gz]' --set tokenizer=$tok \
    "${sets[@]}" 2>&1 | tr '\r' '\n' | grep -E "peak CUDA|rror|xception" | sed "s/^/$name: /"
  python3 - "$work/$name/metrics.jsonl" "$name" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
s = [r for r in rows if r["step"] > 10]
tps = sum(r["tokens"] for r in s) / sum(r["seconds"] for r in s)
mfu = tps * statistics.mean(r["mfu"] / r["tokens_per_second"] for r in s)
print(f"LEVER {sys.argv[2]:<28} tokens_per_s={tps:.0f} mfu={mfu:.3f} loss@60={rows[-1]['loss']:.4f}")
PY
}
run wait-every-step "-Dhanlin.waitEveryStep=true" master_weights=false
run autocast "" master_weights=false
run master-weights "" master_weights=true
run master-nopointergc "-Dorg.bytedeco.javacpp.nopointergc=true" master_weights=true
run master-ckpt "" master_weights=true gradient_checkpointing=true
known=" $(python3 bench/tools/gpu_fused_rows.py known .gpu/lib loss_chunk_tokens explicit_backward) "
if [[ "$known" == *" loss_chunk_tokens "* ]]; then
  run master-whole-logits "" master_weights=true loss_chunk_tokens=0
  run master-chunked-loss "" master_weights=true loss_chunk_tokens=4096
  run master-chunked-mb8 "" master_weights=true loss_chunk_tokens=4096 per_device_train_batch_size=8
fi
if [[ "$known" == *" explicit_backward "* ]]; then
  run master-explicit "" master_weights=true explicit_backward=true
fi
