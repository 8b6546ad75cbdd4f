#!/usr/bin/env bash
# After bench/gpu-session-1.sh on the same 4-GPU machine (issue 7): data parallel on all 4 GPUs
# (efficiency against session 1's 1-GPU figure), then per-GPU memory of full training of the
# Llama-2-7B shape on 4 GPUs with ZeRO-2 and gradient checkpointing.
set -u
export TOKENIZER=.gpu/tok/tokenizer.model PYTHONUNBUFFERED=1
base=$(awk '$1 == 1 {gsub(",", "", $3); print $3}' /tmp/sc-table.txt 2>/dev/null)
echo "1-GPU tokens/s from session 1: ${base:-unknown}"
BASE=$base WORK=/tmp/sc RESULTS=$OUT/sc bash bench/ddp-scaling.sh 4
ZERO=2 WORK=/tmp/sc7 RESULTS=$OUT bash bench/ddp-scaling.sh 7b 4
