#!/usr/bin/env bash
# Fault injection on CPU: a tiny Llama pretrained on held-out Chinese text with Meta's Llama 2
# tokenizer, hurt in the ways real runs get hurt, each judged against an uninterrupted run:
#
#   kill -9 at random steps, and at each stage of a checkpoint write (strace injects SIGKILL when
#     the trainer makes the temp folder, opens each file in it, renames it into place, prunes the
#     oldest checkpoint, writes the final export), then resume: the losses must be bitwise those of
#     the uninterrupted run;
#   disk full during a checkpoint (output_dir on a small tmpfs): the run must stop with the
#     previous checkpoint intact, and resume bitwise once there is room;
#   corrupted token shards (tokens rewritten, bits flipped, header, index, truncated, appended):
#     verify-data and pretrain must both refuse, naming the shard (pretrain may instead tokenize
#     the raw input again, when the shard no longer matches its manifest);
#   corrupted checkpoints (truncated weights / optimizer state / trainer_state.json, a flipped
#     header byte, NaN weights): resume must refuse naming the file or tensor, or fall back to an
#     earlier checkpoint and still match bitwise.
#
# Prints `fault | tries | survived | note` and exits non-zero if any fault was not survived.
# Needs the built jar (mvn -B -q package -DskipTests), Debian's python3 for byte surgery, strace,
# and root for the tmpfs (without it that row says so and is skipped). About 10 minutes on 2 idle
# cores. Usage: bench/fault-injection.sh [WORK_DIR]   (default: a new folder under /tmp)
# SECTIONS="kill diskfull shards checkpoints" (the default) picks what runs.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
JAR=$REPO/cli/target/trainer.jar
PY=/usr/bin/python3
TOKENIZER=$REPO/test-data/assets/tokenizer/tokenizer.model
CORPUS=$REPO/test-data/assets/corpus/zh_heldout_modern.txt
for f in "$JAR" "$TOKENIZER" "$CORPUS"; do
  [ -f "$f" ] || { echo "missing $f (build: mvn -B -q package -DskipTests; assets: bin/test)" >&2; exit 2; }
done
command -v strace >/dev/null || { echo "needs strace (apt-get install strace)" >&2; exit 2; }
WORK=${1:-$(mktemp -d /tmp/hanlin-faults.XXXXXX)}
mkdir -p "$WORK"
SECTIONS=${SECTIONS:-kill diskfull shards checkpoints}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
STEPS=12 # checkpoints at 4, 8, 12 (save_total_limit 2); the kills aim at checkpoint-8
echo "fault injection in $WORK ($(date -u +%FT%TZ), $(nproc) cores, $("$JAVA" -version 2>&1 | head -1))"

ROWS=()
FAILED=0
row() { # fault tries survived note
  ROWS+=("$1 | $2 | $3 | $4")
  [ "$2" = "$3" ] || FAILED=1
  echo "  -> $1: $3/$2 survived. $4"
}
summary() { # fault tries survived all-survived-note failed-prefix failure-notes...
  local fault=$1 tries=$2 ok=$3 note=$4 prefix=$5
  shift 5
  [ $# -gt 0 ] && note="$prefix: $(IFS=';'; echo "$*")"
  row "$fault" "$tries" "$ok" "$note"
}

# config OUT [extra yaml lines]: writes OUT.yaml for a run into OUT
config() {
  local out=$1 data=${DATA:-$WORK/data}
  cat >"$out.yaml" <<EOF
model_config: $REPO/configs/demo/tiny-llama.json
config_overrides: {vocab_size: 32000, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: true}
tokenizer: $TOKENIZER
train_files: [$CORPUS]
validation_split_percentage: 5
data_dir: $data
block_size: 32
output_dir: $out
max_steps: $STEPS
per_device_train_batch_size: 2
learning_rate: 3.0e-3
warmup_steps: 3
eval_steps: 0
max_eval_batches: 2
save_steps: 4
save_total_limit: 2
logging_steps: 1
device: cpu
${2:-}
EOF
  echo "$out.yaml"
}

trainer() { "$JAVA" --enable-native-access=ALL-UNNAMED -jar "$JAR" "$@"; }
pretrain() { trainer --mode pretrain --config "$1" >>"$2" 2>&1; } # YAML LOG

# step:loss:grad_norm of every train line of OUT/metrics.jsonl, exactly as written
losses() {
  "$PY" -c '
import json, sys
for line in open(sys.argv[1] + "/metrics.jsonl"):
    n = json.loads(line, parse_float=str)
    if n.get("type") == "train":
        print("%s:%s:%s" % (n["step"], n["loss"], n["grad_norm"]))' "$1" 2>/dev/null
}
train_lines() { # OUT: how many steps metrics.jsonl has logged
  local n
  n=$(grep -c '"type":"train"' "$1/metrics.jsonl" 2>/dev/null)
  echo "${n:-0}"
}
same_losses() { [ "$(losses "$1")" = "$(cat "$WORK/reference.losses")" ]; } # OUT

# strace_kill YAML LOG SYSCALLS PATH [N]: runs pretrain, SIGKILLed on entering the Nth (default
# first) of SYSCALLS on PATH (strace 6.1 -P matches a rename's old path only)
strace_kill() {
  # in a subshell with stderr dropped, so that bash does not print "Killed" for the strace
  (strace -f -qq -o /dev/null -e trace="$3" -e inject="$3":signal=SIGKILL:when="${5:-1}" -P "$4" \
    "$JAVA" --enable-native-access=ALL-UNNAMED -jar "$JAR" --mode pretrain --config "$1" \
    >>"$2" 2>&1) 2>/dev/null
}

echo "== reference: $STEPS uninterrupted steps (also prepares the token shards)"
ref=$WORK/reference
pretrain "$(config "$ref")" "$ref.log" || { echo "reference run failed: $ref.log" >&2; exit 1; }
losses "$ref" >"$WORK/reference.losses"
[ "$(wc -l <"$WORK/reference.losses")" -eq "$STEPS" ] || { echo "reference has no $STEPS losses" >&2; exit 1; }
CKPT_BYTES=$(du -sb "$ref/checkpoint-$STEPS" | cut -f1)
echo "   $(tail -1 "$WORK/reference.losses"), checkpoint $((CKPT_BYTES / 1024)) KiB"

if want kill; then
# ---- kill -9, then resume ----------------------------------------------------------------------
kill_tries=0 kill_ok=0 kill_notes=()
resume_and_judge() { # OUT WHAT
  local out=$1 what=$2 state
  state=$(cd "$out" 2>/dev/null && for d in checkpoint-* .checkpoint-*.tmp; do
    [ -d "$d" ] && printf '%s{%s} ' "$d" "$(ls -A "$d" | sed 's/^\.\(.*\)\.[0-9a-f]*\.tmp$/.\1.*.tmp/' | tr '\n' ',' | sed 's/,$//')"
  done)
  kill_tries=$((kill_tries + 1))
  if pretrain "$out.yaml" "$out.log" && same_losses "$out"; then
    kill_ok=$((kill_ok + 1))
    echo "   killed $what (left: ${state:-nothing}): resumed bitwise"
  else
    kill_notes+=("$what")
    echo "   killed $what (left: ${state:-nothing}): NOT bitwise or resume failed, see $out.log"
  fi
}

echo "== kill -9 at random steps"
for i in 1 2; do
  out=$WORK/kill-random-$i
  at=$((2 + RANDOM % 9))
  trainer --mode pretrain --config "$(config "$out")" >>"$out.log" 2>&1 &
  pid=$!
  while kill -0 $pid 2>/dev/null && [ "$(train_lines "$out")" -lt $at ]; do sleep 0.02; done
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  resume_and_judge "$out" "after step $(train_lines "$out") (aimed at $at)"
done

echo "== kill -9 as soon as the temp folder of checkpoint-8 appears (polling)"
out=$WORK/kill-poll
trainer --mode pretrain --config "$(config "$out")" >>"$out.log" 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null && [ ! -e "$out/.checkpoint-8.tmp" ]; do sleep 0.002; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
resume_and_judge "$out" "when .checkpoint-8.tmp appeared"

echo "== SIGKILL at each stage of a checkpoint write (strace fault injection)"
stage() { # NAME SYSCALLS PATH-IN-OUT WHAT [N]
  local out=$WORK/kill-$1 rc
  config "$out" >/dev/null
  strace_kill "$out.yaml" "$out.log" "$2" "$out/$3" "${5:-1}"
  rc=$?
  if [ $rc -ne 137 ]; then
    kill_tries=$((kill_tries + 1))
    kill_notes+=("$4: the injected kill never fired (exit $rc)")
    echo "   $4: the injected kill never fired (exit $rc), see $out.log"
    return
  fi
  resume_and_judge "$out" "$4"
}
# Each safetensors file is written as .NAME.<random>.tmp, renamed, and its folder fsynced: the
# Nth open of the temp folder (for that fsync) is the moment after the Nth file is in place.
tmp=.checkpoint-8.tmp
stage mkdir mkdir,mkdirat "$tmp" "at mkdir of $tmp"
for n in 1 2 3; do
  stage "fsync$n" open,openat "$tmp" "at fsync #$n of $tmp (a file just renamed into it)" $n
done
stage config open,openat "$tmp/config.yaml" "at open of $tmp/config.yaml"
stage state open,openat "$tmp/trainer_state.json" "at open of $tmp/trainer_state.json (written last)"
stage rename rename,renameat,renameat2 "$tmp" "at rename of $tmp to checkpoint-8"
stage prune unlink,unlinkat,rmdir "checkpoint-4/model.safetensors" \
  "while pruning checkpoint-4 after checkpoint-12 (its trainer_state.json already gone)"
stage export rename,renameat,renameat2 "config.json.tmp" "as the final export's config.json is renamed"
summary "kill -9 (random steps, checkpoint-write stages)" $kill_tries $kill_ok \
  "all resumed bitwise" "not survived" "${kill_notes[@]}"
fi

if want diskfull; then
# ---- disk full during a checkpoint ---------------------------------------------------------------
echo "== disk full while writing checkpoint-8 (output_dir on a tmpfs with room for ~1.5 checkpoints)"
mnt=$WORK/tmpfs
mkdir -p "$mnt"
size=$(((CKPT_BYTES * 3 / 2 + 2 * 1024 * 1024) / 4096 * 4096))
if mount -t tmpfs -o size=$size tmpfs "$mnt" 2>"$WORK/mount.err"; then
  out=$mnt/run
  config "$out" >/dev/null
  pretrain "$out.yaml" "$WORK/diskfull.log"
  rc=$?
  ok=0 why=""
  if [ $rc -eq 0 ]; then why="the run did not fail with the disk full"
  elif [ ! -f "$out/checkpoint-4/trainer_state.json" ]; then why="checkpoint-4 was lost"
  elif [ -e "$out/checkpoint-8" ]; then why="a checkpoint-8 folder exists"
  elif ! grep -qi "checkpoint" "$WORK/diskfull.log"; then why="the error does not say what failed"
  fi
  echo "   exit $rc, left: $(cd "$out" && ls -d checkpoint-* .checkpoint-* 2>/dev/null | tr '\n' ' ')"
  echo "   last line: $(grep -v '^step' "$WORK/diskfull.log" | tail -1)"
  if [ -z "$why" ]; then
    mount -o remount,size=$((CKPT_BYTES * 8)) "$mnt"
    if pretrain "$out.yaml" "$WORK/diskfull.log" && same_losses "$out"; then ok=1
    else why="resume after freeing space was not bitwise (see $WORK/diskfull.log)"; fi
  fi
  row "disk full during checkpoint-8 (tmpfs $((size / 1024)) KiB)" 1 $ok \
    "${why:-stopped with checkpoint-4 intact, no checkpoint-8; resumed bitwise after remount}"
  umount "$mnt"
else
  row "disk full during a checkpoint" 0 0 "skipped: cannot mount a tmpfs ($(head -1 "$WORK/mount.err"))"
fi
fi

if want shards; then
# ---- corrupted token shards ------------------------------------------------------------------------
echo "== corrupted token shards"
corrupt_shard() { # SHARD HOW
  "$PY" - "$1" "$2" <<'EOF'
import struct, sys
path, how = sys.argv[1], sys.argv[2]
b = bytearray(open(path, "rb").read())
width, tokens = struct.unpack_from("<iq", b, 12)
index = struct.unpack_from("<q", b, 48)[0]
if how == "every-50th-token-31999":
    for i in range(0, tokens, 50): struct.pack_into("<H", b, 256 + 2 * i, 31999)
elif how == "every-50th-token-65535":
    for i in range(0, tokens, 50): struct.pack_into("<H", b, 256 + 2 * i, 65535)
elif how == "one-bit-in-a-token":
    b[256 + 2 * (tokens // 2)] ^= 0x04
elif how == "header-token-count":
    b[16] ^= 0x01
elif how == "index-entry":
    b[index + 8 * 3] ^= 0x10
elif how == "truncated":
    del b[-100:]
elif how == "appended":
    b += b"\0" * 8
open(path, "wb").write(bytes(b))
EOF
}
# in place, restored after each: a copy elsewhere would not match its manifest and be re-prepared
cp -a "$WORK/data" "$WORK/data.pristine"
shard_tries=0 shard_ok=0 shard_notes=()
for how in every-50th-token-31999 every-50th-token-65535 one-bit-in-a-token header-token-count \
  index-entry truncated appended; do
  d=$WORK/data
  rm -rf "$d" && cp -a "$WORK/data.pristine" "$d"
  shard=$(ls "$d"/shards/*.train.*.tok | head -1)
  corrupt_shard "$shard" "$how"
  name=$(basename "$shard")
  vlog=$WORK/verify-$how.log
  trainer --mode verify-data --data "$d" --tokenizer "$TOKENIZER" >"$vlog" 2>&1
  vrc=$?
  out=$WORK/pretrain-$how
  config "$out" "stop_after_steps: 2" >/dev/null
  pretrain "$out.yaml" "$out.log"
  prc=$?
  for who in verify-data pretrain; do
    shard_tries=$((shard_tries + 1))
    if [ $who = verify-data ]; then rc=$vrc log=$vlog; else rc=$prc log=$out.log; fi
    if [ $rc -ne 0 ] && grep -q "$name" "$log"; then
      shard_ok=$((shard_ok + 1))
    elif [ $who = pretrain ] && [ $rc -eq 0 ] && grep -q "0 unchanged and reused" "$log" &&
      cmp -s "$shard" "$WORK/data.pristine/shards/$name"; then
      # prepare saw the shard did not match its manifest and tokenized the raw input again: the
      # corrupted bytes were never trained on (though nothing says so)
      shard_ok=$((shard_ok + 1))
      shard_notes+=("pretrain on $how: re-prepared the shard silently")
    else
      shard_notes+=("$who on $how: exit $rc, $(grep -m1 -i 'error' "$log" | cut -c1-90 || true)")
    fi
  done
  echo "   $how: verify-data exit $vrc, pretrain exit $prc ($(grep -m1 -i error "$out.log" | cut -c1-100))"
done
rm -rf "$WORK/data" && mv "$WORK/data.pristine" "$WORK/data"
summary "corrupted token shards (verify-data and pretrain)" $shard_tries $shard_ok \
  "all refused naming the shard" "not all refused naming the shard" "${shard_notes[@]}"
fi

if want checkpoints; then
# ---- corrupted checkpoints ------------------------------------------------------------------------
echo "== corrupted checkpoints (checkpoint-8 of a run stopped there)"
base=$WORK/stopped
pretrain "$(config "$base" "stop_after_steps: 8")" "$base.log"
sed -i '/^stop_after_steps/d' "$base.yaml"
corrupt_ckpt() { # DIR HOW
  "$PY" - "$1" "$2" <<'EOF'
import json, os, struct, sys
d, how = sys.argv[1], sys.argv[2]
def cut(name):
    p = os.path.join(d, name); n = os.path.getsize(p)
    with open(p, "r+b") as f: f.truncate(n // 2)
if how == "truncated-weights": cut("model.safetensors")
elif how == "truncated-optimizer": cut("optimizer.safetensors")
elif how == "truncated-trainer-state": cut("trainer_state.json")
elif how == "flipped-header-byte":
    p = os.path.join(d, "model.safetensors"); b = bytearray(open(p, "rb").read())
    b[8 + 2] ^= 0x20  # inside the JSON header
    open(p, "wb").write(bytes(b))
elif how == "nan-weights":
    p = os.path.join(d, "model.safetensors"); b = bytearray(open(p, "rb").read())
    n = struct.unpack_from("<Q", b, 0)[0]; h = json.loads(b[8:8 + n])
    name = "model.norm.weight"; lo, hi = h[name]["data_offsets"]
    for at in range(8 + n + lo, 8 + n + hi, 4): struct.pack_into("<I", b, at, 0x7FC00000)
    open(p, "wb").write(bytes(b))
EOF
}
ckpt_tries=0 ckpt_ok=0 ckpt_notes=()
for how in truncated-weights truncated-optimizer truncated-trainer-state flipped-header-byte \
  nan-weights; do
  out=$WORK/ckpt-$how
  rm -rf "$out" && cp -a "$base" "$out"
  sed "s#$base#$out#g" "$base.yaml" >"$out.yaml"
  corrupt_ckpt "$out/checkpoint-8" "$how"
  pretrain "$out.yaml" "$out.log"
  rc=$?
  case $how in
    truncated-weights | flipped-header-byte | nan-weights) named="model.safetensors|model.norm.weight" ;;
    truncated-optimizer) named="optimizer.safetensors" ;;
    truncated-trainer-state) named="trainer_state.json" ;;
  esac
  [ $how = nan-weights ] && named="model.norm.weight"
  ckpt_tries=$((ckpt_tries + 1))
  if { [ $rc -ne 0 ] && grep -Eq "$named" "$out.log"; } || { [ $rc -eq 0 ] && [ $how != nan-weights ] && same_losses "$out"; }; then
    ckpt_ok=$((ckpt_ok + 1))
    r="survived"
  else
    r="NOT survived"
    ckpt_notes+=("$how: exit $rc, $(grep -m1 -iE 'error|exception' "$out.log" | cut -c1-90 || true)")
  fi
  echo "   $how: exit $rc, $r: $(grep -m1 -iE 'error|resuming' "$out.log" | cut -c1-120)"
done
summary "corrupted checkpoints (resume)" $ckpt_tries $ckpt_ok \
  "each refused naming the file/tensor, or resumed bitwise from an earlier checkpoint" \
  "not survived" "${ckpt_notes[@]}"
fi

echo
echo "fault | tries | survived | note"
echo "--- | --- | --- | ---"
printf '%s\n' "${ROWS[@]}"
exit $FAILED
