#!/usr/bin/env bash
# NCCL failure handling without the launcher: rank 1 SIGKILLed, then (second run) SIGSTOPped;
# how long rank 0 takes to exit, its status and message.
set -u
export TORCH_NCCL_DUMP_ON_TIMEOUT=0 TORCH_NCCL_WAIT_TIMEOUT_DUMP_MILSEC=1000
J=".device/gpu-java -Xmx8g"
mkdir -p /tmp/f
cat > /tmp/f/c.yaml <<YAML
model_config: $PWD/bench/tinyllama.json
config_overrides: {hidden_size: 256, intermediate_size: 512, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2}
tokenizer: $PWD/.gpu-ddp/tok/tokenizer.model
train_files: [$PWD/.gpu-ddp/poetry.txt.gz]
validation_split_percentage: 1
data_dir: /tmp/f/data
output_dir: /tmp/f/out
overwrite_output_dir: true
block_size: 128
max_steps: 1000000
per_device_train_batch_size: 2
device: cuda
logging_steps: 1
save_steps: 0
dist_timeout_seconds: 20
YAML
for sig in KILL; do
  for r in 0 1; do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29811 \
      $J --enable-native-access=ALL-UNNAMED -cp ".gpu-ddp/lib/*" dev.hanlin.cli.Main --mode pretrain --config /tmp/f/c.yaml > $OUT/fail-$sig-$r.log 2>&1 &
    eval "p$r=\$!"
  done
  for i in $(seq 300); do grep -q "step 20/" $OUT/fail-$sig-0.log && break; sleep 0.2; done
  kill -$sig $p1; t0=$(date +%s%N)
  wait $p0; rc=$?; t1=$(date +%s%N)
  echo "== SIG$sig rank 1: rank 0 exited with status $rc after $(( (t1 - t0) / 1000000 )) ms"
  grep -v WARNING $OUT/fail-$sig-0.log | grep -iE "error|fail|timeout|watchdog" | head -5 | cut -c1-400
  kill -KILL $p1 2>/dev/null; wait $p1 2>/dev/null
done
