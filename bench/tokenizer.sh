#!/usr/bin/env bash
# Encode throughput of Hanlin's tokenizer, HF tokenizers (Rust, via DJL) and Python
# sentencepiece on the same Chinese and English text, one thread and all cores, in one table.
# One-thread rows are per CPU-second of that thread (a shared machine's other load does not
# count); all-core rows are wall clock.
# Needs test-data/tokenizer/setup.sh to have run. Usage:
#   bench/tokenizer.sh [EXTENDED_TOKENIZER_DIR]      (env: THREADS, SECONDS_PER_ROW)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tokenizer_assets
threads="${THREADS:-$(nproc)}"
secs="${SECONDS_PER_ROW:-2}"
# Timed: all held-out modern Chinese and the first 6,000 classical lines (2.2 MB together), the
# first 20,000 English sentences (1.8 MB). Ids are compared with HF tokenizers on all of them.
tmp="$(mktemp -d)"
head -n 6000 "$assets/corpus/zh_heldout_classical.txt" >"$tmp/zh_classical_6k.txt"
head -n 20000 "$assets/corpus/en_sentences.jsonl" >"$tmp/en_20k.jsonl"
zh="$assets/corpus/zh_heldout_modern.txt,$tmp/zh_classical_6k.txt"
en="$tmp/en_20k.jsonl"
ext=()
pyext=()
if [ $# -ge 1 ]; then
  ext=(--extended "$1")
  pyext=("extended=$1/tokenizer.model")
fi

(cd "$root" && mvn -B -q -Pbench -pl bench -am package -DskipTests)
out="$(mktemp)"
"$JAVA_HOME/bin/java" -Xmx8g --enable-native-access=ALL-UNNAMED -cp "$root/bench/target/bench-0.1.0-SNAPSHOT.jar:$root/bench/target/lib/*" \
  dev.hanlin.bench.TokenizerBench --model "$model" "${ext[@]}" --threads "$threads" \
  --seconds "$secs" --corpus "zh=$zh" --corpus "en=$en" \
  --parity "code=$assets/corpus/code.jsonl" --parity "emoji=$assets/corpus/emoji.jsonl" \
  --parity "mixed=$assets/corpus/mixed.jsonl" --parity "fortunes=$assets/corpus/en_fortunes.jsonl" \
  --parity "zh_all=$assets/corpus/zh_heldout_classical.txt" \
  --parity "en_all=$assets/corpus/en_sentences.jsonl" \
  | tee "$out" >&2
/usr/bin/python3 "$root/bench/sp_bench.py" "$threads" "$secs" "llama2-32k=$model" "${pyext[@]}" \
  "zh=$zh" "en=$en" | tee -a "$out" >&2

echo
echo "machine: $(nproc) cores, $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u "+%F %H:%M") UTC, load average$(uptime | sed "s/.*load average//")"
{
  echo "implementation|threads|tokenizer|text|MB/s|M tokens/s|tokens/char"
  grep '^ROW|' "$out" | cut -d'|' -f2- | sort -t'|' -k3,3 -k4,4 -k2,2n -s
} | column -t -s'|'
echo
grep '^DECODE|' "$out" | cut -d'|' -f2- | awk -F'|' '{printf "decode %s %s/%s, %s thread: %s MB/s\n", $1, $3, $4, $2, $5}'
grep '^PARITY|' "$out" | cut -d'|' -f2- | awk -F'|' '{printf "HF tokenizers ids == Hanlin ids: %s/%s: %s of %s documents\n", $1, $2, $3, $4}'
echo "(1-thread rows: per CPU-second of the encoding thread; $threads-thread rows: wall clock)"
rm -rf "$out" "$tmp"
