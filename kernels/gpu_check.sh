#!/usr/bin/env bash
# The GPU checks, in one run on a machine with CUDA (see docs/kernels.md, "Measured on the GPU"):
#   1. the kernel benchmark (streaming attention and the fused router; eager and CUDA-graph timings),
#   2. every `gpu`-marked test, compiled: kernels against their references, and the shipped engine
#      through the Triton and the PyTorch paths against each other and against the CPU,
#   3. the engine's per-chunk step at each preset through both kernel paths (`bya bench gpu`).
# Usage: bash kernels/gpu_check.sh OUTDIR [--with-train]. Each step has its own time limit and writes
# its files as it goes, so a step cut off still leaves what it measured. It needs torch and triton
# with CUDA, and runs from the repository root without installing the package.
set -u
out=${1:?usage: bash kernels/gpu_check.sh OUTDIR [--with-train]}
only=stream,router
[ "${2:-}" = "--with-train" ] && only=stream,router,train
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET BYA_KERNELS
log="$out/gpu_tests.log"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.version.cuda)"
} 2>&1 | tee "$log"
start=$SECONDS
timeout "${BENCH_LIMIT:-220}" python3 -m kernels.bench --only "$only" --json "$out/kernels.json" >"$out/kernels_bench.log" 2>&1
echo "kernel bench: rc $? in $((SECONDS - start)) s"
grep '^|' "$out/kernels_bench.log"
start=$SECONDS
timeout "${TESTS_LIMIT:-150}" python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_kernels.py tests/test_kernel_paths.py 2>&1 | tee -a "$log" | tail -25
echo "gpu tests: rc ${PIPESTATUS[0]} in $((SECONDS - start)) s"
start=$SECONDS
timeout "${MODEL_LIMIT:-90}" python3 -m realtime.cli bench gpu --presets toon-s,base --sessions 1,8 --repeat 10 \
  --json "$out/gpu_model.json" 2>&1 | tee "$out/gpu_model.log"
echo "model bench: rc ${PIPESTATUS[0]} in $((SECONDS - start)) s"
start=$SECONDS
timeout "${LARGE_LIMIT:-60}" python3 -m realtime.cli bench gpu --presets large --sessions 1 --dtypes bf16 --repeat 3 \
  --json "$out/gpu_model_large.json" 2>&1 | tee "$out/gpu_model_large.log"
echo "large model bench: rc ${PIPESTATUS[0]} in $((SECONDS - start)) s"
