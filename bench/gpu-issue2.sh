#!/usr/bin/env bash
# Run from the project root on the GPU machine with .gpu/lib holding the bench jars (see bench/README.md).
# One GPU session: parity on CUDA, transformers loading Hanlin's export, fwd+bwd bench vs transformers.
set -u
export PYTHONUNBUFFERED=1
j() { .device/gpu-java -Xmx32g --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
j dev.hanlin.bench.GpuParityCheck test-data/parity cuda 2>&1 | grep -v WARNING
python3 test-data/parity/check_hanlin_export.py .gpu/export 2>&1 | grep -E "RESULT|Error|error"
j dev.hanlin.bench.ForwardBackwardBench tinyllama 4 2048 10 3 2>&1 | grep -v WARNING
python3 bench/fwd_bwd_hf.py tinyllama 4 2048 10 3 2>&1 | grep -E "RESULT|Error|error"
