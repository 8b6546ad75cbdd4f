#!/usr/bin/env bash
# One call on a 4-GPU machine (issues 6, 7, 8), each comparison on one card, the cards in parallel:
#   GPU 0: bench/vs-hf.sh tinyllama, then bench/vs-hf.sh lora7b (Hanlin vs HF Trainer; issue 6's
#          7B LoRA memory is the Hanlin side of lora7b)
#   GPU 1: bench/levers.sh
#   GPUs 2-3: bench/ddp-scaling.sh 1 2
# Logs go to $OUT. Then, on the same machine, bench/gpu-session-2.sh for the 4-GPU runs.
set -u
export TOKENIZER=.gpu/tok/tokenizer.model PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
.device/gpu-java --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" dev.hanlin.bench.CudaProbe 2>&1 | grep PROBE
if .device/gpu-java --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" dev.hanlin.bench.CudaProbe 2>&1 | grep -q "PROBE.*FAIL"; then exit 1; fi
(CUDA_VISIBLE_DEVICES=0 WORK=/tmp/vs1 bash bench/vs-hf.sh tinyllama > $OUT/vs-hf-tinyllama.log 2>&1
 CUDA_VISIBLE_DEVICES=0 WORK=/tmp/vs2 bash bench/vs-hf.sh lora7b > $OUT/vs-hf-lora7b.log 2>&1) &
(CUDA_VISIBLE_DEVICES=1 WORK=/tmp/lev bash bench/levers.sh > $OUT/levers.log 2>&1) &
(CUDA_VISIBLE_DEVICES=2,3 WORK=/tmp/sc RESULTS=$OUT/sc bash bench/ddp-scaling.sh 1 2 > $OUT/scaling12.log 2>&1) &
wait
cp $OUT/sc/ddp-scaling.txt /tmp/sc-table.txt
for f in $OUT/*.log $OUT/sc/ddp-scaling.txt; do echo "=== $f"; grep -E "RESULT|LEVER|loss|GPU|peak|rror|xception|^[124] " $f | tail -30; done
