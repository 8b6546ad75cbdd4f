#!/usr/bin/env bash
# Data-pipeline benchmark (issue 4): --mode prepare throughput (MB/s, tokens/s) on the Chinese
# corpus with every core, a re-run that skips unchanged inputs, then loader blocks/s and the time
# a trainer at TRAINER_TPS tokens/s waits per step for data. Needs test-data/tokenizer/setup.sh.
#   bench/data.sh                (env: CORPUS, BLOCK, BATCH, STEPS, TRAINER_TPS, WORKERS)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tokenizer_assets
corpus="${CORPUS:-$assets/corpus/zh_train.txt}"
(cd "$root" && mvn -B -q -pl cli -am package -DskipTests -Dspotless.check.skip=true)
cp="$root/cli/target/trainer.jar:$root/cli/target/lib/*"
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "# corpus: $corpus ($(du -h "$corpus" | cut -f1))"
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -Xmx4g -cp "$cp" \
  "$root/bench/data/DataBench.java" --tokenizer "$model" --corpus "$corpus" \
  --workers "${WORKERS:-0}" --block "${BLOCK:-1024}" --batch "${BATCH:-8}" \
  --steps "${STEPS:-2000}" --trainer-tokens-per-s "${TRAINER_TPS:-50000}" \
  --out "${OUT:-/tmp/hanlin-databench}"
