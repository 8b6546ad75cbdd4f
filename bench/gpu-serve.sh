#!/usr/bin/env bash
# Issue 18's GPU figures: `--mode serve` on the TinyLlama-1.1B shape in bf16 (random weights), 1, 8,
# 32 and 64 concurrent streaming clients (bench/serve-load.sh). Two parts:
#
#   bash bench/gpu-serve.sh pack     # here: .gpu/ = the project jars without the bytedeco ones, the
#                                    # JDK's jdk.httpserver classes as a jar (the GPU runtime from
#                                    # shared/device/ leaves that module out), the bench classes
#                                    # compiled ahead (it has no jdk.compiler), the Llama 2 tokenizer
#   bash bench/gpu-serve.sh run      # there, with .device/gpu-java and .gpu/ carried: writes $OUT/serve-gpu.log
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  pack)
    J=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
    rm -rf .gpu && mkdir -p .gpu/lib .gpu/classes
    cp cli/target/trainer.jar .gpu/lib/
    for f in cli/target/lib/*.jar; do
      case $(basename "$f") in javacpp* | pytorch* | openblas*) ;; *) cp "$f" .gpu/lib/ ;; esac
    done
    tmp=$(mktemp -d)
    "$J/bin/jimage" extract --dir "$tmp" --include 'regex:/jdk.httpserver/.*' "$J/lib/modules"
    rm "$tmp/jdk.httpserver/module-info.class"
    "$J/bin/jar" cf .gpu/lib/jdk-httpserver.jar -C "$tmp/jdk.httpserver" .
    rm -rf "$tmp"
    "$J/bin/javac" -d .gpu/classes -cp "cli/target/trainer.jar:cli/target/lib/*" bench/serve/*.java
    cp test-data/assets/tokenizer/tokenizer.model .gpu/
    du -sh .gpu
    ;;
  run)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    date -u
    SHAPE=bench/tinyllama.json DEVICE=cuda DTYPE=bfloat16 LEVELS=${LEVELS:-1,8,32,64} MAX_BATCH=64 \
      PER_CLIENT=${PER_CLIENT:-4} MAX_TOKENS=${MAX_TOKENS:-128} TOKENIZER=.gpu/tokenizer.model \
      JAVA=.device/gpu-java CP=".gpu/lib/*" BENCH_CLASSES=.gpu/classes WORK=/tmp/serve-bench \
      bash bench/serve-load.sh 2>&1 | tee "${OUT:-/tmp}/serve-gpu.log"
    cp /tmp/serve-bench/server.log "${OUT:-/tmp}/serve-gpu-server.log" 2>/dev/null || true
    ;;
  *) echo "usage: bench/gpu-serve.sh pack|run" >&2; exit 2 ;;
esac
