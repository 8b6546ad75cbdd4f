#!/usr/bin/env bash
# Proves that a change to model/ keeps its outputs bitwise (issue 14's Linear record and one
# forward path): runs bench/model-equivalence/ModelOutputs.java against an older build's jars and
# against this tree's, and compares every line (each output's size, first and last values) and the
# SHA-256 over all of them.
#
#   bench/model-equivalence.sh OLD_LIB     # OLD_LIB: a folder with the older model, native-bindings
#                                          # and tokenizer jars (e.g. /work/baseline/old-lib)
# Uses cli/target/lib (built first when missing) for this tree. About a minute on 2 cores.
set -euo pipefail
old=$(realpath "${1:?OLD_LIB}")
repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/bin/lib/jdk.sh"
java=$(hanlin_java)
lib=$repo/cli/target/lib
[ -d "$lib" ] || (cd "$repo" && mvn -B -q package -DskipTests)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp=() # third-party jars from this build; Hanlin's from each side
for j in "$lib"/*.jar; do case $(basename "$j") in model-* | native-bindings-* | tokenizer-*) ;; *) cp+=("$j") ;; esac; done
third=$(IFS=:; echo "${cp[*]}")
run() { # $1: folder of Hanlin jars, $2: output
  local h="$1/model-0.1.0-SNAPSHOT.jar:$1/native-bindings-0.1.0-SNAPSHOT.jar:$1/tokenizer-0.1.0-SNAPSHOT.jar"
  mkdir -p "$work/$2"
  "$(dirname "$java")/javac" -cp "$h:$third" -d "$work/$2" "$repo/bench/model-equivalence/ModelOutputs.java"
  "$java" --enable-native-access=ALL-UNNAMED -cp "$work/$2:$h:$third" ModelOutputs "$repo/test-data/parity" >"$work/$2.txt"
}
run "$old" old
run "$lib" new
if diff "$work/old.txt" "$work/new.txt"; then
  echo "bitwise equal: $(wc -l <"$work/new.txt") outputs, $(grep SHA "$work/new.txt")"
else
  echo "outputs differ (lines above: < old, > new)" >&2
  exit 1
fi
