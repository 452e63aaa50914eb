#!/usr/bin/env bash
# The checks of one GPU session, prepared to fit its device time (about
# 15 minutes, machine start included): the GPU benchmarks of
# docs/benchmarks.md and the whole job trained in bf16 mixed precision.
#
# Build the CUDA binary where Rust is (no GPU needed), then run this from the
# repository root on the GPU machine (CUDA and PyTorch installed):
#
#   CUDARC_CUDA_VERSION=13000 cargo build --release -p ssdit --features cuda  # CUDA 13.0 there; ~50 min on 2 cores
#   mkdir -p gpu-bin && strip -o gpu-bin/ssdit "$CARGO_TARGET_DIR/release/ssdit" && xz -T2 -6 gpu-bin/ssdit
#   cp -r ../shared/fixtures gpu-bin/                          # 9 MB: the parity steps' references
#   OUT=$OUT bench/gpu-check.sh gpu-bin/ssdit.xz               # on the GPU machine, carrying gpu-bin
#
# The stripped binary is ~200 MB, over the 64 MiB that the working tree may
# weigh on its way to the GPU machine; compressed it is ~30 MB, and this
# script unpacks it (xz, or Python's lzma where xz is missing).
#
# First the kernels at the seed's sizes and the models against the
# reference fixtures on the GPU (six parity checks of at most 90 s each,
# seconds each once compiled; FIXTURES names the folder, default
# gpu-bin/fixtures), then four benchmarks of at most 3 minutes, a run of at
# most 5 and one more benchmark of at most 2.5 (last, so that a 600 s limit
# cuts the least needed): give the command 600 s and expect it to take about
# half of that.
# Every step has its own time limit, so one that hangs does not take the
# rest; a failed step is reported and the script goes on. Results go to
# $OUT (default gpu-out/), in few files (the device tool brings back eight):
# summary.txt (every step's output, with the peak GPU memory in use), one
# JSON per benchmark, the run's sheet.png. DEVICE=cpu SIDES=ours CONFIGS=small
# STEPS=30 FIXTURES=../shared/fixtures runs the same steps on the CPU, to
# check the script itself.
set -uo pipefail

bin=${1:?usage: bench/gpu-check.sh PATH/TO/ssdit[.xz] (a --features cuda build)}
out=${OUT:-gpu-out}
if [ "${bin%.xz}" != "$bin" ]; then
  unpacked=$(mktemp -d)/ssdit
  if command -v xz > /dev/null; then
    xz -dc "$bin" > "$unpacked"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$bin" "$unpacked"
  fi || { echo "cannot unpack $bin" >&2; exit 1; }
  chmod +x "$unpacked"
  bin=$unpacked
fi
device=${DEVICE:-cuda}
sides=${SIDES:-both}
configs=${CONFIGS:-seed small}
steps=${STEPS:-3000}
fixtures=${FIXTURES:-gpu-bin/fixtures}
mkdir -p "$out"
failed=0
# A failing kernel panics burn's device thread again at every later call,
# each time with a backtrace (176 000 lines in a rehearsal on a software
# Vulkan device): the first panic's message is what summary.txt needs.
export RUST_BACKTRACE=0

step() {
  local name=$1 limit=$2
  shift 2
  printf '\n=== %s (%s, limit %ss)\n' "$name" "$(date +%T)" "$limit" | tee -a "$out/summary.txt"
  local started=$SECONDS sampler="" samples=""
  # The GPU memory in use, sampled through the step, in between the reads
  # after each timed run that the benchmark tables hold (in a two-sided
  # benchmark this peak is the larger side's).
  if command -v nvidia-smi > /dev/null; then
    samples=$(mktemp)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 > "$samples" 2> /dev/null &
    sampler=$!
  fi
  timeout "$limit" "$@" 2>&1 | tee -a "$out/summary.txt"
  local rc=${PIPESTATUS[0]}
  if [ -n "$sampler" ]; then
    kill "$sampler" 2> /dev/null
    wait "$sampler" 2> /dev/null
    printf -- '--- %s: peak GPU memory in use %s MiB (nvidia-smi every 250 ms)\n' \
      "$name" "$(sort -n "$samples" | tail -1)" | tee -a "$out/summary.txt"
  fi
  printf -- '--- %s: exit %s after %ss\n' "$name" "$rc" "$((SECONDS - started))" | tee -a "$out/summary.txt"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
}

if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$out/summary.txt"
fi

# burn's CUDA backend compiles its kernels at run time: it loads libnvrtc
# and reads the CUDA headers under $CUDA_PATH (the binary refuses the device,
# naming the header, where include/cuda_runtime.h is missing). Point both at
# the toolkit when the loader does not know it.
if [ "$device" != cpu ]; then
  export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
  if ! ldconfig -p 2> /dev/null | grep -q 'libnvrtc\.so'; then
    export LD_LIBRARY_PATH="$CUDA_PATH/lib64:$CUDA_PATH/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  { command -v nvcc > /dev/null && nvcc --version | tail -2
    echo "CUDA_PATH=$CUDA_PATH LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
    ls "$CUDA_PATH"/lib64/libnvrtc.so* "$CUDA_PATH"/include/cuda_runtime.h 2>&1 | head -4; } 2>&1 |
    tee -a "$out/summary.txt"
fi

# The DiT's hot operations at the seed's sizes, f32 and bf16, against the
# CPU kernels; then our models on this device against the references'
# golden outputs, at the fixtures' own tolerances (set for f32 on a CPU).
# burn's CUDA backend may take f32 matmuls as TF32 (10-bit mantissa,
# cubek's accelerated strategies): a rel_l2 around 1e-3 is that; far beyond
# it is a bug.
step parity-kernels 90 "$bin" parity kernels --device "$device"
if [ -d "$fixtures" ]; then
  for kind in dit sampler train-step vae t5gemma2; do
    step "parity-$kind" 90 "$bin" parity "$kind" "$fixtures/${kind/-/_}" --device "$device"
  done
else
  echo "no fixtures at $fixtures: the parity steps are skipped" | tee -a "$out/summary.txt"
fi

for config in $configs; do
  for dtype in bf16 f32; do
    [ "$device" = cpu ] && [ "$dtype" = bf16 ] && continue
    step "bench-$config-$dtype" 180 "$bin" bench dit --config "$config" --device "$device" \
      --dtype "$dtype" --sides "$sides" --iters 3 --json "$out/bench-$config-$dtype.json"
  done
done

# The whole job on the embedded default, the DiT trained and sampled in
# models.precision (bf16 by default) on the GPU: the sheet's PSNRs say
# whether the generated images still reproduce their photos.
# Its metrics' last rows go to the summary: Memory_MB is the GPU's memory in
# use there.
run_dir=$(mktemp -d)
step run 300 env SSDIT_DEVICE="$device" SSDIT_STORE_URL="$run_dir/store" "$bin" run \
  --steps "$steps" --out "$run_dir"
cp "$run_dir/sheet.png" "$out/sheet.png" 2> /dev/null
find "$run_dir/store" -name metrics.csv -exec sh -c 'head -1 "$1"; tail -3 "$1"' _ {} \; \
  | tee -a "$out/summary.txt"

# Last, the first config's training step (ours) with block-level activation
# checkpointing: its time and GPU memory against the plain step's above
# (docs/benchmarks.md estimates ~16.5 GiB for the seed's batch 16 without,
# ~8.3 GiB with: the 16 GB target).
first=${configs%% *}
checkpointed_dtype=bf16
[ "$device" = cpu ] && checkpointed_dtype=f32
step "bench-$first-$checkpointed_dtype-checkpointing" 150 "$bin" bench dit --config "$first" \
  --device "$device" --dtype "$checkpointed_dtype" --sides ours --skip forward,sample \
  --checkpointing blocks --iters 2 --json "$out/bench-$first-checkpointing.json"

printf '\n%s step(s) failed\n' "$failed" | tee -a "$out/summary.txt"
exit "$failed"
