#!/usr/bin/env bash
# Train the shipped toon-s models from nothing: the frame autoencoder, then the flow-matching teacher on its
# latents. Usage: bash distill/train/toon_s.sh OUT_DIR DEVICE AE_MINUTES TEACHER_MINUTES CLIPS BATCH WORKERS
# (the GPU run of docs/models/toon-s-teacher.md: runs/gpu cuda 2.2 4.8 600 96 15).
set -euo pipefail
out=${1:-runs/toon-s}; device=${2:-cpu}; ae_min=${3:-20}; teacher_min=${4:-60}
clips=${5:-200}; batch=${6:-16}; workers=${7:-2}
py=${PYTHON:-python3}
mkdir -p "$out"
$py -m distill.train.autoencoder --out "$out/ae" --minutes "$ae_min" --device "$device" \
  --batch $((batch < 64 ? 16 : 64)) --pool $((workers * 20)) --workers "$workers" 2>&1 | tee "$out/ae.log"
teacher() {
  $py -m distill.train.teacher --preset toon-s --out "$out/teacher" --autoencoder "$out/ae/ae-s.safetensors" \
    --minutes "$teacher_min" --device "$device" --clips "$clips" --batch "$batch" --workers "$workers" "$@" \
    2>&1 | tee -a "$out/teacher.log"
}
if ! teacher; then
  echo "teacher training failed with the default kernels; retrying with the PyTorch kernels" | tee -a "$out/teacher.log"
  BYA_KERNELS=torch teacher --resume
fi
