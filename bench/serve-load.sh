#!/usr/bin/env bash
# Serving throughput: starts `--mode serve` on a random-weight model of a given shape (bound to
# 127.0.0.1 only), then bench/serve/ServeLoad.java sends streaming completions from 1, 8, 32 (...)
# concurrent clients and prints requests/s and generated tokens/s per level.
#
#   bench/serve-load.sh                      # CPU: a tiny shape (hidden 256, 4 layers), float32
#   SHAPE=bench/tinyllama.json DEVICE=cuda DTYPE=bfloat16 LEVELS=1,8,32,64 MAX_BATCH=64 \
#     JAVA=.device/gpu-java CP=".gpu/lib/*" BENCH_CLASSES=.gpu/classes bench/serve-load.sh  # GPU
#
# BENCH_CLASSES: RandomModel and ServeLoad compiled ahead (javac -d DIR bench/serve/*.java), for a
# runtime without jdk.compiler (the GPU machine's); bench/gpu-serve.sh prepares that bundle.
#
# Needs the built jars (mvn -B -q package -DskipTests) and the Llama 2 tokenizer (test-data/tokenizer/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
JAVA=${JAVA:-${JAVA_HOME:+$JAVA_HOME/bin/}java}
CP=${CP:-"cli/target/trainer.jar:cli/target/lib/*"}
SHAPE=${SHAPE:-bench/serve/tiny-cpu.json}
DEVICE=${DEVICE:-cpu}
DTYPE=${DTYPE:-float32}
LEVELS=${LEVELS:-1,8,32}
PER_CLIENT=${PER_CLIENT:-4}
MAX_TOKENS=${MAX_TOKENS:-64}
MAX_BATCH=${MAX_BATCH:-32}
PORT=${PORT:-18734}
TOK=${TOKENIZER:-test-data/assets/tokenizer/tokenizer.model}
work=${WORK:-/tmp/hanlin-serve-bench}
model="$work/$(basename "$SHAPE" .json)-$DTYPE"
if [ ! -f "$model/config.json" ]; then
  mkdir -p "$work"
  if [ -n "${BENCH_CLASSES:-}" ]; then
    "$JAVA" --enable-native-access=ALL-UNNAMED -cp "$CP:$BENCH_CLASSES" RandomModel "$SHAPE" "$TOK" "$model" "$DTYPE"
  else
    "$JAVA" --enable-native-access=ALL-UNNAMED -cp "$CP" bench/serve/RandomModel.java "$SHAPE" "$TOK" "$model" "$DTYPE"
  fi
fi
echo "shape=$SHAPE device=$DEVICE dtype=$DTYPE max_batch=$MAX_BATCH levels=$LEVELS per_client=$PER_CLIENT max_tokens=$MAX_TOKENS"
log="$work/server.log"
"$JAVA" --enable-native-access=ALL-UNNAMED -Dorg.bytedeco.javacpp.nopointergc=true -cp "$CP" dev.hanlin.cli.Main \
  --mode serve --model "$model" --device "$DEVICE" --dtype "$DTYPE" --host 127.0.0.1 --port "$PORT" \
  --served-model-name bench --max-batch "$MAX_BATCH" --max-queue 256 >"$log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  grep -q "^serving" "$log" && break
  kill -0 $server 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.5
done
head -1 "$log"
if [ -n "${BENCH_CLASSES:-}" ]; then
  "$JAVA" -cp "$BENCH_CLASSES" ServeLoad "http://127.0.0.1:$PORT" bench "$LEVELS" "$PER_CLIENT" "$MAX_TOKENS"
else
  "$JAVA" bench/serve/ServeLoad.java "http://127.0.0.1:$PORT" bench "$LEVELS" "$PER_CLIENT" "$MAX_TOKENS"
fi
curl -s "http://127.0.0.1:$PORT/health"; echo
