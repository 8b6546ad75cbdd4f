#!/usr/bin/env bash
# Issue 8 (and 6) on a 2-GPU machine, each comparison on one card, the two cards in parallel:
#   GPU 0: bench/vs-hf.sh tinyllama, then bench/vs-hf.sh lora7b;  GPU 1: bench/levers.sh
set -u
export TOKENIZER=.gpu/tok/tokenizer.model PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
.device/gpu-java --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" dev.hanlin.bench.CudaProbe 2>&1 | grep PROBE
(CUDA_VISIBLE_DEVICES=0 WORK=/tmp/vs1 bash bench/vs-hf.sh tinyllama > $OUT/vs-hf-tinyllama.log 2>&1
 CUDA_VISIBLE_DEVICES=0 WORK=/tmp/vs2 bash bench/vs-hf.sh lora7b > $OUT/vs-hf-lora7b.log 2>&1) &
(CUDA_VISIBLE_DEVICES=1 WORK=/tmp/lev bash bench/levers.sh > $OUT/levers.log 2>&1) &
wait
for f in $OUT/*.log; do echo "=== $f"; grep -E "RESULT|LEVER|peak|rror|xception|^ +[0-9]+ " $f | tail -20; done
