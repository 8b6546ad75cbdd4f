#!/usr/bin/env bash
# Issue 17 on one GPU: LoRA on a 4-bit base. Writes random-weight HF folders of the Llama-2-7B shape
# (bench/llama2-7b.json) and, with SHAPES="7b 13b", of the 13B shape, in bf16 with transformers, then
# trains bench/sft-qlora-7b.yaml with load_in_bits 4, 8 and none (bf16 base) and prints tokens/s and the
# peak CUDA memory the trainer reports; PEFT + bitsandbytes beside it when bitsandbytes imports there.
# Carry .gpu/lib (the jars), .gpu/tokenizer.model (Llama 2's) and .gpu/sft-long.jsonl
# (python3 bench/tools/make_sft_long.py).
set -u
j() { .device/gpu-java -Xmx64g --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" dev.hanlin.cli.Main "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c 'import bitsandbytes, sys; print("bitsandbytes", bitsandbytes.__version__)' 2>&1 | tail -1
for shape in ${SHAPES:-7b}; do
  python3 - "$shape" <<'PY'
import json, sys, time, torch
from transformers import LlamaConfig, LlamaForCausalLM
shape = sys.argv[1]
c = json.load(open("bench/llama2-7b.json"))
if shape == "13b":
    c.update(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40, num_key_value_heads=40)
t = time.time()
torch.manual_seed(0)
with torch.device("cuda"):
    m = LlamaForCausalLM._from_config(LlamaConfig(**c), torch_dtype=torch.bfloat16)
m.save_pretrained(f"/tmp/llama-{shape}", safe_serialization=True, max_shard_size="5GB")
print(f"wrote /tmp/llama-{shape}: {sum(p.numel() for p in m.parameters())/1e9:.2f} B parameters in {time.time()-t:.0f} s")
PY
  for bits in ${BITS:-4 8 none}; do
    [ "$shape" = 13b ] && [ "$bits" != 4 ] && continue
    set -- --set model_name_or_path=/tmp/llama-$shape
    [ "$bits" = none ] || set -- "$@" --set lora.load_in_bits=$bits
    echo "== $shape LoRA r=8, base: ${bits} bits"
    j --mode sft --config bench/sft-qlora-7b.yaml "$@" 2>&1 | tr '\r' '\n' | grep -v '^\s*$' \
      | grep -E 'memory|load_in_bits|quantiz|step (4|8|12)/|peak CUDA|rror|xception' | tail -8
  done
  rm -rf /tmp/llama-$shape
done
