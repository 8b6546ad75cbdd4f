#!/usr/bin/env bash
# Issue 7 on a 2-GPU machine: data-parallel scaling on 1 and 2 GPUs, then per-GPU memory of full
# training of the Llama-2-7B shape on 2 GPUs with ZeRO-2 and gradient checkpointing.
set -u
export TOKENIZER=.gpu/tok/tokenizer.model PYTHONUNBUFFERED=1
WORK=/tmp/sc RESULTS=$OUT/sc bash bench/ddp-scaling.sh 1 2
ZERO=2 WORK=/tmp/sc7 RESULTS=$OUT bash bench/ddp-scaling.sh 7b 2
