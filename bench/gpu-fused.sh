#!/usr/bin/env bash
# Issue 16 on one GPU: Hanlin's TinyLlama-1.1B pretraining (bench/pretrain-tinyllama.yaml, seq 2048,
# bf16) with its speed levers on and off one at a time, beside the compiled PyTorch loop
# (bench/peers/compile_loop.py) and HF Trainer on the same card; the loss curve with every lever on
# against every lever off; the Llama-2-7B LoRA row against HF + PEFT. In parts that each fit one
# device call (10 minutes):
#   bash bench/gpu-fused.sh speed [MB...]   # Hanlin, levers one at a time, at micro-batch 4 and 8
#                                           # (default both, ~4 min each: give one per call if tight)
#   bash bench/gpu-fused.sh peers [MB...]   # the compiled loop at micro-batch 4 and 8 (~2 min each),
#                                           # HF Trainer at 4 (~1.5 min)
#   bash bench/gpu-fused.sh curve           # 300 steps, all levers on vs all off, micro-batch 4 (~5 min)
#   bash bench/gpu-fused.sh lora            # Llama-2-7B LoRA r=8, levers on, vs HF + PEFT (~5 min)
#   bash bench/gpu-fused.sh run NAME MB "k=v ..."  # one Hanlin row with exactly these settings
#   bash bench/gpu-fused.sh table FILE...   # anywhere (python3 only): one table of the parts' rows
# Each part appends one JSON line per row to $RESULTS/<part>.jsonl (RESULTS defaults to
# $OUT/gpu-fused, the device call's output folder, or /tmp/gpu-fused) and prints its table; fetch the
# files and run `table` over all of them for the whole picture (tokens/s, MFU, peak GiB, ratios).
# Levers: LEVERS="key=on:off ..." (default below); a key the jars' config does not know (an older
# jar, or one built without the explicit backward) is left out with a note, not an error.
# HANLIN_SET="k=v ..." adds settings to every Hanlin run, HANLIN_JAVA_OPTS JVM options (e.g.
# -Dhanlin.sdpa=cudnn for cuDNN's attention kernel); STEPS (default 40) steps per speed run,
# timed after step 10; RUN_TIMEOUT (default 240 s) caps each run so a part cannot hang the call.
# Needs (bench/README.md): .device/gpu-java, the jars in .gpu/lib, .gpu/poetry.txt.gz, Llama 2's
# tokenizer.model (TOKENIZER=path, default test-data/assets/tokenizer/tokenizer.model), and on the
# device python3 with torch and transformers (peft for lora).
set -u
part=${1:?speed|peers|curve|lora|run|table}
shift
export PYTHONUNBUFFERED=1
rows=bench/tools/gpu_fused_rows.py
if [ "$part" = table ]; then exec python3 "$rows" table "$@"; fi

results=${RESULTS:-${OUT:-/tmp}/gpu-fused}
work=${WORK:-/tmp/gpu-fused-work}
tok=${TOKENIZER:-test-data/assets/tokenizer/tokenizer.model}
steps=${STEPS:-40}
limit=${RUN_TIMEOUT:-240}
mkdir -p "$results" "$work"
out=$results/$part.jsonl
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader -i "${CUDA_VISIBLE_DEVICES:-0}" | head -1
date -u +"%Y-%m-%d %H:%M UTC"

# the levers: key=value-on:value-off, only those the jar knows
wanted=${LEVERS:-"loss_chunk_tokens=4096:0 explicit_backward=true:false master_weights=true:false"}
keys=(); ons=(); offs=()
knows=" $(python3 "$rows" known .gpu/lib $(for l in $wanted; do echo "${l%%=*}"; done)) "
for l in $wanted; do
  k=${l%%=*}; v=${l#*=}
  if [[ "$knows" == *" $k "* ]]; then keys+=("$k"); ons+=("${v%%:*}"); offs+=("${v#*:}")
  else echo "lever $k: the jars in .gpu/lib do not know this key; left out"; fi
done
# no checkpoint (each is 15 GB of TinyLlama fp32 state: four runs filled the device's 64 GB disk)
nosave=(); [ -n "$(python3 "$rows" known .gpu/lib save_strategy)" ] && nosave=(--set save_strategy=no)
# settings with every lever on, except those named off
levers() { # [key-to-turn-off...] | "all-off"
  local s="" i
  for i in "${!keys[@]}"; do
    if [ "${1:-}" = all-off ] || [[ " $* " == *" ${keys[$i]} "* ]]; then s+="${keys[$i]}=${offs[$i]} "
    else s+="${keys[$i]}=${ons[$i]} "; fi
  done
  echo "$s"
}

# hanlin NAME MB STEPS SETTINGS: one pretraining run into $work/NAME, its row into $out
hanlin() {
  local name=$1 mb=$2 n=$3 settings="$4 ${HANLIN_SET:-}"
  local sets=(); for kv in $settings; do sets+=(--set "$kv"); done
  rm -rf "${work:?}/$name"
  echo "== hanlin $name: micro-batch $mb, $n steps, $settings"
  timeout "$limit" .device/gpu-java -Xmx64g --enable-native-access=ALL-UNNAMED ${HANLIN_JAVA_OPTS:-} -cp ".gpu/lib/*" dev.hanlin.cli.Main \
    --mode pretrain --config bench/pretrain-tinyllama.yaml --set max_steps="$n" --set eval_steps=0 \
    --set max_eval_batches=1 --set logging_steps=10 --set data_dir="$work/data" --set output_dir="$work/$name" \
    --set overwrite_output_dir=true --set train_files='[.gpu/poetry.txt.gz]' --set tokenizer="$tok" \
    --set per_device_train_batch_size="$mb" --set per_device_eval_batch_size="$mb" "${nosave[@]}" "${sets[@]}" 2>&1 \
    | tr '\r' '\n' > "$work/$name.log"
  grep -E "^step ($n)/|peak CUDA|rror|xception" "$work/$name.log" | tail -4 | sed "s/^/  /"
  python3 "$rows" hanlin "$out" "$part" "$name" "$mb" "$work/$name" "$settings"
}

case $part in
  run)
    part=speed; out=$results/speed.jsonl
    hanlin "${1:?name}" "${2:?micro-batch}" "$steps" "${3:-}" ;;
  speed)
    for mb in ${@:-4 8}; do
      hanlin "mb$mb-all-on" "$mb" "$steps" "$(levers)"
      for k in "${keys[@]}"; do hanlin "mb$mb-no-$k" "$mb" "$steps" "$(levers "$k")"; done
      [ ${#keys[@]} -gt 1 ] && hanlin "mb$mb-all-off" "$mb" "$steps" "$(levers all-off)"
    done ;;
  peers)
    for mb in ${@:-4 8}; do
      echo "== compiled loop, micro-batch $mb"
      timeout "$limit" python3 bench/peers/compile_loop.py "$mb" > "$work/compiled-mb$mb.log" 2>&1
      tail -1 "$work/compiled-mb$mb.log" | sed "s/^/  /"
      python3 "$rows" compiled "$out" "$part" "$work/compiled-mb$mb.log"
    done
    echo "== HF Trainer, micro-batch 4 (its pinned settings)"
    data=(); [ -d "$work/data/shards" ] && data=(--data "$work/data")  # else random ids: same speed
    timeout "$limit" python3 bench/hf_trainer_bench.py --preset tinyllama --steps 60 --warmup 10 "${data[@]}" \
      > "$work/hf.log" 2>&1
    grep -E "RESULT|Error" "$work/hf.log" | sed "s/^/  /"
    python3 "$rows" hf "$out" "$part" "$work/hf.log" ;;
  curve)
    limit=${RUN_TIMEOUT:-290}
    hanlin curve-all-on 4 300 "$(levers)"
    hanlin curve-all-off 4 300 "$(levers all-off)"
    python3 "$rows" curve "$work/curve-all-off" "$work/curve-all-on" | tee "$results/curve.txt" ;;
  lora)
    # bench/vs-hf.sh lora7b with the levers on the Hanlin side (master_weights does not apply to LoRA)
    sets=""; for kv in $(levers); do [[ $kv == master_weights=* ]] || sets+="$kv "; done
    HANLIN_SET="$sets ${HANLIN_SET:-}" WORK=$work/lora timeout 580 bash bench/vs-hf.sh lora7b 2>&1 | tee "$work/lora.log"
    cp "$work/lora.log" "$work/lora/hanlin.log" 2>/dev/null  # its peak memory line
    python3 "$rows" hanlin "$out" lora "7B LoRA, levers on" 1 "$work/lora/hanlin" "$sets"
    python3 "$rows" hf "$out" lora "$work/lora/hf.out" ;;
  *) echo "part: speed | peers | curve | lora | table" >&2; exit 2 ;;
esac
echo "== $part"
python3 "$rows" table "$out"
