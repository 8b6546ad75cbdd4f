#!/usr/bin/env bash
# The 2026-12-02 (third session) H200 calls for issues 15 and 16, one part per device call (10 minutes
# each), on one warm machine in this order; every part writes under $OUT and prints its table.
#   k  correctness on the card: the gpu-tagged kernel tests (NVRTC kernels, bench/gpu-kernels.sh with
#      PROFILE=0), SdpaGpuTest (FlashAttention-2, cuDNN, memory-efficient against float32 autograd),
#      FusedAdamWDeviceGpuTest (offload's CPU AdamW with the GPU's clip scale and skip flag),
#      LoraDropoutGpuTest (the explicit path's LoRA dropout draws autograd's masks on CUDA), and
#      PyTorch's attention backends timed at TinyLlama's shape (bench/tools/attn_bench.py)
#   s  speed, one call: Hanlin at micro-batch 16 (FlashAttention-2, then cuDNN attention) and 8, the
#      compiled loop at 8 and 4, HF Trainer at its 4 (bench/gpu-fused.sh speed + peers)
#   c  the 300-step loss curve, levers on vs off (bench/gpu-fused.sh curve), then the per-op profile
#   l  the 7B LoRA row against HF + PEFT (bench/gpu-fused.sh lora), LoRA dropout now on the explicit path
#   o  7B full SFT on one GPU with offload_optimizer: cpu, the pipelined update (bench/gpu-offload.sh)
#   z  ZeRO-3 with world size 1 on CUDA against stage 0 (bench/gpu-zero3.sh single)
# Carry .device/gpu-java, .device/rt.count, .gpu/lib, .gpu/kernel-tests, .gpu/loradrop-tests, .gpu/junit-*.jar,
# .gpu/poetry.txt.gz, .gpu/tokenizer.model, .gpu/tok, .gpu/sft-long.jsonl.
set -u
part=${1:?k|s|c|l|o|z}
export TOKENIZER=${TOKENIZER:-.gpu/tokenizer.model} PYTHONUNBUFFERED=1
export RESULTS=${RESULTS:-$OUT/gpu-fused}
JUNIT=.gpu/junit-platform-console-standalone-1.14.4.jar
levers="loss_chunk_tokens=4096 explicit_backward=true master_weights=true"
case $part in
  k)
    PROFILE=0 bash bench/gpu-kernels.sh 2>&1 | tail -45
    .device/gpu-java -Xmx16g -cp ".gpu/kernel-tests:.gpu/lib/*:$JUNIT" org.junit.platform.console.ConsoleLauncher \
      execute --disable-banner --disable-ansi-colors --details=tree --include-tag=gpu \
      --select-class=dev.hanlin.torch.fused.SdpaGpuTest 2>&1 | grep -vE "^\s*$|WARNING" | tail -20
    .device/gpu-java -Xmx16g -cp ".gpu/kernel-tests:.gpu/lib/*:$JUNIT" org.junit.platform.console.ConsoleLauncher \
      execute --disable-banner --disable-ansi-colors --details=tree --include-tag=gpu \
      --select-class=dev.hanlin.torch.optim.FusedAdamWDeviceGpuTest 2>&1 | grep -vE "^\s*$|WARNING" | tail -12
    SPEED=0 bash bench/gpu-loradrop.sh 2>&1 | tail -25
    python3 bench/tools/attn_bench.py 16 ;;
  s)
    f=bench/gpu-fused.sh
    bash $f run mb16-flash 16 "$levers" 2>&1 | grep -E "^==|^  step|peak"
    HANLIN_JAVA_OPTS=-Dhanlin.sdpa=cudnn bash $f run mb16-cudnn-attention 16 "$levers" 2>&1 | grep -E "^==|^  step|peak"
    bash $f run mb8-flash 8 "$levers" 2>&1 | grep -E "^==|^  step|peak"
    bash $f peers 8 4 2>&1 | tail -14 ;;
  c)
    bash bench/gpu-fused.sh curve 2>&1 | tail -40
    BATCHES=8 bash bench/gpu-kernels.sh 2>&1 | sed -n '/Step profile/,$p' | head -60 ;;
  l)
    bash bench/gpu-fused.sh lora 2>&1 | tail -16 ;;
  o)
    PIPELINES=${PIPELINES:-true} STEPS=${STEPS:-5} bash bench/gpu-offload.sh 2>&1 | tail -30 ;;
  z)
    STEPS=${STEPS:-8} bash bench/gpu-zero3.sh single 2>&1 | tail -20 ;;
  *) echo "part: k | s | c | l | o | z" >&2; exit 2 ;;
esac
