#!/usr/bin/env bash
# Proves that a change to the training engine keeps behaviour bitwise (issue 14).
#
#   bench/engine-equivalence.sh record DIR   # with the jar BEFORE the change: runs every variant,
#                                            # keeps losses, grad norms, eval losses, file hashes
#                                            # and some checkpoints under DIR
#   bench/engine-equivalence.sh check DIR    # with the jar AFTER: the same runs must give the same
#                                            # values and files, and DIR's checkpoints (written by
#                                            # the old jar) must resume to the old runs' values
#
# Each variant is one engine path: the CPU demo (fp32, single process), the LoRA SFT example
# (accumulation, LoRA dropout), full SFT with packing, checkpointing + accumulation, bf16 autocast,
# bf16 master weights, and 2-process DDP, ZeRO-1 and ZeRO-2 on Gloo. Values compared: every
# metrics.jsonl field but the timings (seconds, tokens_per_second, mfu, time); files compared:
# the sha256 of the exported model or adapter and of each checkpoint's tensors.
# Uses HANLIN_JAR (default cli/target/trainer.jar, built first when missing). About 8 minutes on 2
# cores per mode.
set -euo pipefail
mode=${1:?record|check}
base=$(realpath -m "${2:?DIR}")
repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/bin/lib/jdk.sh"
java=$(hanlin_java)
jar=${HANLIN_JAR:-$repo/cli/target/trainer.jar}
[ -f "$jar" ] || (cd "$repo" && mvn -B -q package -DskipTests)
export LC_ALL=C.UTF-8 HANLIN_JAR=$jar

case $mode in
  record) work=$base; rm -rf "$work"; mkdir -p "$work" ;;
  check) work=$base/check; rm -rf "$work"; mkdir -p "$work"; [ -d "$base/demo" ] || { echo "no record in $base" >&2; exit 2; } ;;
  *) echo "mode is record or check" >&2; exit 2 ;;
esac
cd "$work"
ln -sfn "$repo/configs" configs
ln -sfn "$repo/test-data" test-data

trainer() { "$java" --enable-native-access=ALL-UNNAMED -jar "$jar" "$@"; }
launch2() { "$repo/bin/launch" --nproc-per-node 2 -- "$@"; }

# the comparable part of metrics.jsonl: one line per record, timing fields dropped
values() {
  python3 - "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    for k in ("seconds", "tokens_per_second", "mfu", "time"):
        r.pop(k, None)
    print(json.dumps(r, sort_keys=True))
EOF
}

# sha256 of the tensors a folder holds (exported model/adapter, checkpoints), by relative path
hashes() {
  (cd "$1" && find . -name '*.safetensors' -o -name '*.bin' -o -name 'trainer_state.json' | sort | xargs -r sha256sum)
}

# run NAME ARGS...: a variant from scratch into $work/NAME/out
run() {
  local name=$1; shift
  mkdir -p "$work/$name"
  echo "== $name" >&2
  "$@" > "$work/$name/log" 2>&1 || { tail -30 "$work/$name/log" >&2; echo "FAILED: $name" >&2; exit 1; }
  values "$work/$name/out/metrics.jsonl" > "$work/$name/values.jsonl"
  hashes "$work/$name/out" > "$work/$name/files.sha256"
}

pre() { echo "--config configs/pretrain-demo.yaml --set data_dir=$work/data --set output_dir=$work/$1/out"; }

cat > "$work/sft-full.yaml" <<EOF
model_name_or_path: $work/demo/out
tokenizer: configs/demo/tokenizer.model
train_files: [test-data/sft/lunyu_qa.jsonl]
validation_split_percentage: 10
block_size: 128
sft: {format: prompt_response, prompt_field: input, response_field: target, packing: true}
output_dir: $work/sft-full/out
max_steps: 10
per_device_train_batch_size: 4
gradient_accumulation_steps: 2
learning_rate: 1.0e-4
warmup_steps: 2
eval_steps: 5
save_steps: 5
seed: 42
device: cpu
EOF

if [ $mode = record ]; then
  run demo trainer --mode pretrain --overwrite-output-dir --set output_dir=$work/demo/out --set data_dir=$work/demo/data
else
  run demo trainer --mode pretrain --overwrite-output-dir --set output_dir=$work/demo/out --set data_dir=$work/demo/data
fi
run sft-lora trainer --mode sft --config configs/sft-example.yaml --set model_name_or_path=$work/demo/out --set output_dir=$work/sft-lora/out
run sft-full trainer --mode sft --config "$work/sft-full.yaml"
run ckpt-accum trainer --mode pretrain $(pre ckpt-accum) --set max_steps=12 --set save_steps=6 --set eval_steps=6 \
  --set gradient_checkpointing=true --set gradient_accumulation_steps=2
run autocast trainer --mode pretrain $(pre autocast) --set max_steps=8 --set save_steps=4 --set eval_steps=4 --set bf16=true
run master trainer --mode pretrain $(pre master) --set max_steps=8 --set save_steps=4 --set eval_steps=4 \
  --set bf16=true --set master_weights=true
for z in 0 1 2; do
  run ddp-zero$z launch2 --mode pretrain $(pre ddp-zero$z) --set max_steps=8 --set save_steps=4 --set eval_steps=4 \
    --set zero_stage=$z --set gradient_checkpointing=true --set per_device_train_batch_size=4
done

# resume the OLD jar's checkpoints with THIS jar: the steps after must be the old run's
resume() { # NAME CHECKPOINT-SUBDIR CMD...
  local name=$1 ck=$2; shift 2
  local old=$base/$name/out/$ck
  [ -d "$old" ] || { echo "no $old" >&2; exit 1; }
  mkdir -p "$work/resume-$name/out"
  cp -r "$old" "$work/resume-$name/out/"
  echo "== resume $name from the recorded $ck" >&2
  "$@" > "$work/resume-$name/log" 2>&1 || { tail -30 "$work/resume-$name/log" >&2; echo "FAILED: resume $name" >&2; exit 1; }
  values "$work/resume-$name/out/metrics.jsonl" > "$work/resume-$name/values.jsonl"
}

status=0
if [ $mode = check ]; then
  for d in "$base"/*/values.jsonl; do
    name=$(basename "$(dirname "$d")")
    if cmp -s "$d" "$work/$name/values.jsonl"; then echo "same values: $name ($(wc -l < "$d") records)"
    else echo "DIFFERENT values: $name"; diff "$d" "$work/$name/values.jsonl" | head -6; status=1; fi
    if cmp -s "$base/$name/files.sha256" "$work/$name/files.sha256"; then echo "same files:  $name ($(wc -l < "$base/$name/files.sha256") files)"
    else echo "DIFFERENT files: $name"; diff "$base/$name/files.sha256" "$work/$name/files.sha256" | head -6; status=1; fi
  done
  resume demo checkpoint-50 trainer --mode pretrain --set data_dir=$base/demo/data --set output_dir=$work/resume-demo/out
  resume sft-lora checkpoint-20 trainer --mode sft --config configs/sft-example.yaml \
    --set model_name_or_path=$base/demo/out --set output_dir=$work/resume-sft-lora/out
  resume master checkpoint-4 trainer --mode pretrain $(pre resume-master) --set data_dir=$base/data --set max_steps=8 \
    --set save_steps=4 --set eval_steps=4 --set bf16=true --set master_weights=true
  resume ddp-zero2 checkpoint-4 launch2 --mode pretrain $(pre resume-ddp-zero2) --set data_dir=$base/data --set max_steps=8 \
    --set save_steps=4 --set eval_steps=4 --set zero_stage=2 --set gradient_checkpointing=true --set per_device_train_batch_size=4
  for name in demo sft-lora master ddp-zero2; do
    # the resumed run's records are the old run's records after the checkpoint
    if python3 - "$base/$name/values.jsonl" "$work/resume-$name/values.jsonl" <<'EOF'
import json, sys
old = [json.loads(l) for l in open(sys.argv[1])]
new = [json.loads(l) for l in open(sys.argv[2])]
first = min(r["step"] for r in new if r["type"] == "train")
tail = [r for r in old if r["step"] >= first]
sys.exit(0 if new == tail and new else 1)
EOF
    then echo "same values after resuming the old checkpoint: $name"
    else echo "DIFFERENT after resuming the old checkpoint: $name"; status=1; fi
  done
  if cmp -s <(grep -v checkpoint- "$base/demo/files.sha256") <(hashes "$work/resume-demo/out" | grep -v checkpoint-); then
    echo "same exported model after resuming the old demo checkpoint"
  else echo "DIFFERENT exported model after resuming the old demo checkpoint"; status=1; fi
  [ $status = 0 ] && echo "ENGINE EQUIVALENT" || echo "ENGINE DIFFERS"
fi
exit $status
