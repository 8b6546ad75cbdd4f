#!/usr/bin/env bash
# Issue 16, Llama-2-7B LoRA row: explicit_backward with LoRA dropout on one GPU. First the gpu-tagged
# LoraDropoutGpuTest (train): the explicit pass's dropout draw is bitwise libtorch's fused dropout from
# the same seed (float32, bf16; the 7B rows' widths), its mask backward autograd's, and the parity model
# trained as the 7B LoRA run trains it (bf16 base, autocast, dropout 0.05 on all seven projections,
# keeping and recomputing) draws autograd's masks, gradients within bf16 tolerance. Then, unless
# SPEED=0, the 7B LoRA speed row against HF + PEFT with the levers on (bench/gpu-fused.sh lora, ~5 min),
# where explicit_backward now applies (before, it fell back to autograd with one log line).
#
# Prepare on the CPU machine, from the project root (after the jars are in .gpu/lib, bench/README.md,
# and the JUnit console launcher is in .gpu, as `bash bench/gpu-kernels.sh prepare` fetches it):
#   bash bench/gpu-loradrop.sh prepare
# then carry .gpu and run on the device:  bash bench/gpu-loradrop.sh
set -u
JUNIT=junit-platform-console-standalone-1.14.4.jar   # JUnit 5.14.4's platform (pom.xml junit.version)
if [ "${1:-}" = prepare ]; then
  set -e
  mvn -B -q -o test-compile -pl train -am
  rm -rf .gpu/loradrop-tests && mkdir -p .gpu/loradrop-tests
  cp -r train/target/test-classes/dev .gpu/loradrop-tests/
  [ -f ".gpu/$JUNIT" ] || mvn -B -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.4 -DoutputDirectory=.gpu
  du -sh .gpu/loradrop-tests ".gpu/$JUNIT"
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
.device/gpu-java -Xmx16g --enable-native-access=ALL-UNNAMED -cp ".gpu/loradrop-tests:.gpu/lib/*:.gpu/$JUNIT" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --disable-ansi-colors --details=tree \
  --include-tag=gpu --select-class=dev.hanlin.train.explicit.LoraDropoutGpuTest 2>&1 \
  | grep -vE "^\s*$|WARNING" | tail -60
[ "${SPEED:-1}" = 1 ] || exit 0
bash bench/gpu-fused.sh lora
