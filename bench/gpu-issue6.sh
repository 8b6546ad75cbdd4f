#!/usr/bin/env bash
# Issue 6 item 5 on one H100: LoRA on the Llama-2-7B shape (bf16 frozen base, seq 2048) and full SFT
# of the TinyLlama-1.1B shape (seq 2048): tokens/s and peak CUDA memory from the trainer's own lines.
# Needs the GPU runtime (.device/, shared/device/README.md) and .gpu/lib (the project's jars) carried,
# and test-data/assets/tokenizer/tokenizer.model (test-data/tokenizer/setup.sh).
set -u
j() { .device/gpu-java -Xmx100g --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 - <<'PY'
import gzip, json
text = gzip.open('.gpu/poetry.txt.gz', 'rt', encoding='utf-8').read()
with open('/tmp/sft-long.jsonl', 'w', encoding='utf-8') as f:
    for i in range(0, min(len(text), 4000 * 200), 4000):  # ~4000 characters > 2048 tokens each
        f.write(json.dumps({'text': text[i:i + 4000]}, ensure_ascii=False) + '\n')
PY
for cfg in bench/sft-lora-7b.yaml bench/sft-full-tinyllama.yaml; do
  echo "== $cfg"
  j dev.hanlin.cli.Main --mode sft --config $cfg 2>&1 | tr '\r' '\n' | grep -v "^\s*$" \
    | grep -E "LoRA|sft train|step .*/|peak CUDA|error|Exception|done" | tail -12
done
