#!/usr/bin/env bash
# Issue 6 on a GPU: a LoRA run with dropout and gradient checkpointing, stopped at step 3 and resumed,
# gives the uninterrupted run's losses (the CUDA generator's state is in the checkpoint); and equals
# the same run without checkpointing (the recompute replays the forward's dropout masks).
set -u
cat > /tmp/l.yaml <<YAML
model_config: configs/demo/tiny-llama.json
config_overrides: {hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2}
tokenizer: configs/demo/tokenizer.model
train_files: [test-data/sft/lunyu_qa.jsonl]
block_size: 64
max_steps: 6
save_steps: 3
per_device_train_batch_size: 4
learning_rate: 3.0e-3
logging_steps: 1
device: cuda
sft: {format: prompt_response}
lora: {r: 4, lora_alpha: 8, lora_dropout: 0.3}
overwrite_output_dir: false
YAML
J() { .device/gpu-java -Xmx8g --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" dev.hanlin.cli.Main --mode sft --config /tmp/l.yaml "$@" 2>&1 | grep -E "rror|xception|resuming"; }
J --set output_dir=/tmp/la --set gradient_checkpointing=true
J --set output_dir=/tmp/lb --set gradient_checkpointing=true --set stop_after_steps=3
J --set output_dir=/tmp/lb --set gradient_checkpointing=true
J --set output_dir=/tmp/lc
python3 - <<'PY'
import json
def losses(d): return [json.loads(l)["loss"] for l in open(f"{d}/metrics.jsonl") if '"train"' in l]
a, b, c = losses("/tmp/la"), losses("/tmp/lb"), losses("/tmp/lc")
print("checkpointed          ", a)
print("stopped at 3, resumed ", b)
print("plain backward        ", c)
print("RESULT resume_equal", a == b, "max|ckpt - plain|", max(abs(x - y) for x, y in zip(a, c)))
PY
