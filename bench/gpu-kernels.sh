#!/usr/bin/env bash
# Issue 16 on one GPU: the NVRTC kernels (dev.hanlin.torch.fused.NvrtcOps) against libtorch, values and
# gradients in float32 and bfloat16 (NvrtcOpsGpuTest, tag gpu; tolerances in BlockOpsCheck), and every
# kernel compiled by the machine's NVRTC for sm_80/90/100 (KernelCompileTest), run by the JUnit console
# launcher: the same tests as on a developer's GPU box, no Maven on the device (NvrtcOpsGpuTest runs every
# check of BlockOpsCheck: the 16-byte vector and element paths, SwiGLU on the fused gate/up slices with the
# joined gradient, RoPE of q and k in one launch and its backward as q/k/v rows, the norm backward with the
# residual). Then, with KBENCH=1 (default), each kernel against libtorch at TinyLlama shapes (KernelBench,
# about a minute: the before/after table of the kernels), and with PROFILE=1 (default), the per-op profile
# of one TinyLlama step (StepProfile), reference ops and fused side by side, and the real trainer's step
# for the gap.
#
# Prepare on the CPU machine, from the project root (after the jars are in .gpu/lib, bench/README.md):
#   bash bench/gpu-kernels.sh prepare
# then carry .gpu and run on the device:  bash bench/gpu-kernels.sh
set -u
JUNIT=junit-platform-console-standalone-1.14.4.jar   # JUnit 5.14.4's platform (pom.xml junit.version)
if [ "${1:-}" = prepare ]; then
  set -e
  mvn -B -q -o test-compile -pl native-bindings -am
  rm -rf .gpu/kernel-tests && mkdir -p .gpu/kernel-tests
  cp -r native-bindings/target/test-classes/dev .gpu/kernel-tests/
  [ -f ".gpu/$JUNIT" ] || mvn -B -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.4 -DoutputDirectory=.gpu
  du -sh .gpu/kernel-tests ".gpu/$JUNIT"
  exit 0
fi
export HANLIN_KERNEL_CACHE=${HANLIN_KERNEL_CACHE:-/tmp/hanlin-kernels}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
NV=$(python3 -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null || echo /opt/torch/.venv/lib/python3.12/site-packages/nvidia)
ls "$NV/cu13/lib" 2>/dev/null | grep -i nvrtc || echo "no libnvrtc in $NV/cu13/lib: NvrtcOps cannot compile here"
# --- correctness: the gpu-tagged tests and the compile test, through the console launcher ---
.device/gpu-java -Xmx16g -cp ".gpu/kernel-tests:.gpu/lib/*:.gpu/$JUNIT" org.junit.platform.console.ConsoleLauncher \
  execute --disable-banner --disable-ansi-colors --details=tree --include-tag=gpu --include-tag=nvrtc \
  --select-class=dev.hanlin.torch.fused.NvrtcOpsGpuTest --select-class=dev.hanlin.torch.fused.KernelCompileTest 2>&1 \
  | grep -vE "^\s*$|WARNING" | tail -60
ls -la "$HANLIN_KERNEL_CACHE"
j() { .device/gpu-java -Xmx64g --enable-native-access=ALL-UNNAMED -cp ".gpu/lib/*" "$@"; }
# --- each kernel vs libtorch (markdown: save it to bench/results/<date>-<card>-kernel-bench.md) ---
if [ "${KBENCH:-1}" = 1 ]; then
  for mb in ${KBATCHES:-8}; do j dev.hanlin.bench.KernelBench batch=$mb seq=2048; done
fi
[ "${PROFILE:-1}" = 1 ] || exit 0
# --- the per-op profile (markdown on stdout: save it to bench/results/<date>-<card>-step-profile.md) ---
step_ms=
if [ -f .gpu/poetry.txt.gz ] && [ -f .gpu/tok/tokenizer.model ]; then
  for mb in ${BATCHES:-4 8}; do
    rm -rf /tmp/hanlin-prof
    j dev.hanlin.cli.Main --mode pretrain --config bench/pretrain-tinyllama.yaml --set max_steps=40 \
      --set per_device_train_batch_size=$mb --set eval_steps=0 --set logging_steps=5 \
      --set data_dir=/tmp/hanlin-data --set output_dir=/tmp/hanlin-prof \
      --set train_files='[.gpu/poetry.txt.gz]' --set tokenizer=.gpu/tok/tokenizer.model 2>&1 | tr '\r' '\n' \
      | grep -E "rror|xception" | tail -3
    ms=$(python3 - "$mb" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open("/tmp/hanlin-prof/metrics.jsonl") if '"train"' in l]
tps = statistics.mean(r["tokens_per_second"] for r in rows if r["step"] > 10)
print(f"{int(sys.argv[1]) * 2048 / tps * 1000:.1f}")
PY
)
    echo "trainer micro-batch $mb: $ms ms/step"
    j dev.hanlin.bench.StepProfile batch=$mb seq=2048 reps=10 trainer_step_ms=$ms
  done
else
  for mb in ${BATCHES:-4 8}; do j dev.hanlin.bench.StepProfile batch=$mb seq=2048 reps=10; done
fi
