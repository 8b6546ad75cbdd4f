#!/usr/bin/env bash
# issue 7 on 2 GPUs: (1) tiny fp32 model, 1 GPU x batch 4 vs 2 GPUs x batch 2: same losses;
# (2) TinyLlama-1.1B tokens/s per GPU on 1 and 2 GPUs.
set -u
nvidia-smi -L
J=".device/gpu-java -Xmx24g"
mkdir -p /tmp/eq
cat > /tmp/eq/c.yaml <<YAML
model_config: $PWD/bench/tinyllama.json
config_overrides: {hidden_size: 256, intermediate_size: 512, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2}
tokenizer: $PWD/.gpu-ddp/tok/tokenizer.model
train_files: [$PWD/.gpu-ddp/poetry.txt.gz]
validation_split_percentage: 1
data_dir: /tmp/eq/data
block_size: 128
max_steps: 8
learning_rate: 1.0e-3
device: cuda
bf16: false
logging_steps: 1
save_steps: 0
max_eval_batches: 1
dist_timeout_seconds: 120
YAML
for n in 1 2; do
  b=$((4 / n))
  { cat /tmp/eq/c.yaml; echo "output_dir: /tmp/eq/out$n"; echo "per_device_train_batch_size: $b"; } > /tmp/eq/c$n.yaml
  bin/launch --nproc-per-node $n --master-port $((29700+n)) -- $J --enable-native-access=ALL-UNNAMED -cp ".gpu-ddp/lib/*" dev.hanlin.cli.Main --mode pretrain --config /tmp/eq/c$n.yaml > $OUT/eq$n.log 2>&1
  echo "eq $n GPUs: status $?"; grep -E "step [0-9]+/8|error|Error" $OUT/eq$n.log | tail -4
done
python3 -c "
import json
a=[json.loads(l) for l in open('/tmp/eq/out1/metrics.jsonl') if '\"train\"' in l]
b=[json.loads(l) for l in open('/tmp/eq/out2/metrics.jsonl') if '\"train\"' in l]
print('max |loss 1 GPU - loss 2 GPUs| =', max(abs(x['loss']-y['loss']) for x,y in zip(a,b)), 'over', len(a), len(b), 'steps')
"
STEPS=${STEPS:-20} JAVA_CMD="$J" LIB=.gpu-ddp/lib TEXT=.gpu-ddp/poetry.txt.gz TOKENIZER=.gpu-ddp/tok/tokenizer.model bench/ddp-scaling.sh 1 2
grep -E "error|Exception" $OUT/ddp-scaling-*.log | head -10
