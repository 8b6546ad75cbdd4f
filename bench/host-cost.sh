#!/usr/bin/env bash
# Issue 16: host µs per tensor op issued from Java (dev.hanlin.bench.HostCost), with the facade's
# default JavaCPP settings, with JavaCPP's per-object resident-size check forced back on (the old
# default, maxPhysicalBytes = 2 x heap) and with nopointergc. Usage: bench/host-cost.sh [n] [rounds]
# [cpu|cuda]. Needs `mvn -B -q -Pbench package -DskipTests` first (bench/target/lib). On the GPU
# machine set JAVA=.device/gpu-java and LIB=".gpu/lib/*".
set -euo pipefail
cd "$(dirname "$0")/.."
JAVA=${JAVA:-java}
LIB=${LIB:-bench/target/bench-0.1.0-SNAPSHOT.jar:bench/target/lib/*}
N=${1:-200000} R=${2:-3} DEV=${3:-cpu}
run() { echo "## $*"; "$JAVA" --enable-native-access=ALL-UNNAMED "$@" -cp "$LIB" dev.hanlin.bench.HostCost "$N" "$R" "$DEV"; }
run -Dorg.bytedeco.javacpp.maxPhysicalBytes=64g # a positive limit: JavaCPP's per-object /proc read
run                                             # the facade's default: maxPhysicalBytes=0
run -Dorg.bytedeco.javacpp.nopointergc=true
