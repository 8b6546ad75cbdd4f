#!/usr/bin/env bash
# The 2026-12-02 H200 call for issues 14 and 17: the engine before/after on CUDA (bench/gpu-engine.sh),
# and bitsandbytes' NF4 goldens when bitsandbytes imports there (test-data/quant/make_bnb_goldens.py).
set -u
mkdir -p "$OUT/quant"
bash bench/gpu-engine.sh 2>&1 | tee "$OUT/engine.txt"
if python3 -c 'import bitsandbytes' 2>/dev/null; then
  python3 test-data/quant/make_bnb_goldens.py --source bnb --out "$OUT/quant" 2>&1 | tail -5
else
  echo "bitsandbytes: not installed on this machine ($(python3 -c 'import bitsandbytes' 2>&1 | tail -1))"
fi
pip list 2>/dev/null | grep -i -E 'bitsandbytes|^torch |transformers|peft' 
