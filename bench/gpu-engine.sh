#!/usr/bin/env bash
# Issue 14 on a GPU: the engine before and after the redesign, one after the other on the same card,
# must give the same values on the CUDA paths the CPU check (engine-equivalence.sh) cannot reach:
# bf16 autocast (the CUDA default), bf16 master weights, LoRA with dropout drawn on the GPU and
# gradient checkpointing, and resuming the old jar's checkpoint with the new jar.
#   .gpu/old/*  the jars before (trainer.jar and its lib without the bytedeco jars)
#   .gpu/lib/*  the jars after
# Run on the GPU machine from the project root, after the runtime is absorbed:
#   bash bench/gpu-engine.sh        (prints one line per variant and ENGINE EQUIVALENT / DIFFERS)
set -u
out=${OUT:-/tmp/gpu-engine}
mkdir -p "$out"
J() { # CLASSPATH-DIR ARGS...
  local cp=$1; shift
  .device/gpu-java -Xmx16g --enable-native-access=ALL-UNNAMED -cp "$cp/*" dev.hanlin.cli.Main "$@"
}
cat > /tmp/e-pre.yaml <<YAML
model_config: configs/demo/tiny-llama.json
tokenizer: configs/demo/tokenizer.model
train_files: [configs/demo/songci.txt]
validation_split_percentage: 5
data_dir: /tmp/e-data
block_size: 128
max_steps: 30
per_device_train_batch_size: 8
learning_rate: 3.0e-3
min_lr: 3.0e-4
warmup_steps: 5
weight_decay: 0.1
adam_beta2: 0.95
eval_steps: 10
max_eval_batches: 4
save_steps: 10
save_total_limit: 0
logging_steps: 10
device: cuda
seed: 42
YAML
cat > /tmp/e-lora.yaml <<YAML
model_config: configs/demo/tiny-llama.json
tokenizer: configs/demo/tokenizer.model
train_files: [test-data/sft/lunyu_qa.jsonl]
block_size: 128
max_steps: 12
save_steps: 6
save_total_limit: 0
per_device_train_batch_size: 4
gradient_accumulation_steps: 2
learning_rate: 3.0e-3
logging_steps: 6
device: cuda
sft: {format: prompt_response, prompt_field: input, response_field: target}
lora: {r: 4, lora_alpha: 8, lora_dropout: 0.3}
gradient_checkpointing: true
YAML
variants=(
  "autocast|--mode pretrain --config /tmp/e-pre.yaml"
  "master|--mode pretrain --config /tmp/e-pre.yaml --set bf16=true --set master_weights=true"
  "checkpointing|--mode pretrain --config /tmp/e-pre.yaml --set gradient_checkpointing=true --set gradient_accumulation_steps=2 --set max_steps=12"
  "lora|--mode sft --config /tmp/e-lora.yaml"
)
values() {
  python3 - "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    for k in ("seconds", "tokens_per_second", "mfu", "time"): r.pop(k, None)
    print(json.dumps(r, sort_keys=True))
EOF
}
status=0
for v in "${variants[@]}"; do
  name=${v%%|*}; args=${v#*|}
  for side in old lib; do
    # shellcheck disable=SC2086
    J .gpu/$side $args --set output_dir=/tmp/e-$side-$name --set overwrite_output_dir=true > "$out/$side-$name.log" 2>&1 \
      || { echo "$side $name FAILED"; tail -5 "$out/$side-$name.log"; status=1; }
    values /tmp/e-$side-$name/metrics.jsonl > "$out/$side-$name.values" 2>/dev/null
    (cd /tmp/e-$side-$name && find . -name '*.safetensors' | sort | xargs -r sha256sum) > "$out/$side-$name.sha256"
  done
  if cmp -s "$out/old-$name.values" "$out/lib-$name.values" && [ -s "$out/old-$name.values" ]; then
    echo "same values: $name ($(wc -l < "$out/old-$name.values") records)"
  else echo "DIFFERENT values: $name"; diff "$out/old-$name.values" "$out/lib-$name.values" | head -4; status=1; fi
  if cmp -s "$out/old-$name.sha256" "$out/lib-$name.sha256"; then echo "same files: $name ($(wc -l < "$out/old-$name.sha256"))"
  else echo "DIFFERENT files: $name"; status=1; fi
done
# the old jar's checkpoint-10 of the master-weights run, resumed by the new jar
mkdir -p /tmp/e-resume && cp -r /tmp/e-old-master/checkpoint-10 /tmp/e-resume/
J .gpu/lib --mode pretrain --config /tmp/e-pre.yaml --set bf16=true --set master_weights=true \
  --set output_dir=/tmp/e-resume > "$out/resume.log" 2>&1 || { echo "resume FAILED"; tail -5 "$out/resume.log"; status=1; }
if python3 - /tmp/e-old-master/metrics.jsonl /tmp/e-resume/metrics.jsonl <<'EOF'
import json, sys
strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "tokens_per_second", "mfu", "time")}
old = [strip(json.loads(l)) for l in open(sys.argv[1])]
new = [strip(json.loads(l)) for l in open(sys.argv[2])]
sys.exit(0 if new and new == [r for r in old if r["step"] > 10] else 1)
EOF
then echo "same values after resuming the old jar's master-weights checkpoint-10"
else echo "DIFFERENT after resuming the old checkpoint"; status=1; fi
nvidia-smi --query-gpu=name --format=csv,noheader
[ $status = 0 ] && echo "ENGINE EQUIVALENT (GPU)" || echo "ENGINE DIFFERS (GPU)"
