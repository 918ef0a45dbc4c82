#!/usr/bin/env bash
# GPU check (issue 34): proves the CUDA path in at most 8 minutes, each step with its own
# timeout, each asserting what it measures (scripts/gpu_check.py says what and how):
#   (a) env         CUDA build, GPU name, bf16, cuDNN, TF32 off
#   (b) match       one recognizer and one adversary step, CPU vs GPU, height 64, CRNN and
#                   TPP-PHOCNet: within 1e-4 in fp32, 2e-2 in bf16
#   (c) throughput  none and afdm at full width, fp32 vs bf16 + channels_last: steps/s, peak
#                   memory, syncs per step, loader words/s, projected paper-gw cells
#   (d) learning    val CER < 0.5 within 800 steps (a recipe that leaves the CTC plateau)
#   (e) roundtrip   a papermill cell on the GPU killed and resumed; CPU <-> GPU checkpoints
#
#   OUT=/some/folder scripts/gpu_check.sh            # the real check (needs CUDA)
#   OUT=/tmp/gpu-dry scripts/gpu_check.sh --dry-run  # every step on the CPU, tiny sizes
#   scripts/gpu_check.sh --out DIR [--steps env,match]
#
# What lands in $OUT (few, small files, so that a remote runner can fetch them all):
#   gpu_check.json       every step's checks and measurements, rewritten after each step
#   step-<name>.json     one step's result, written when it ends
#   gpu_check.log        everything printed
#   work/                the check's run folders (small; delete at will)
# Exit code 0 only when every check passed.
#
# Needs: an environment with a CUDA build of torch (`make setup TORCH=cuda`, README "On a
# GPU"; PYTHON=/path/to/python, default .venv/bin/python). No network and no data beyond
# the embedded Latin digits.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
args=("$@")
out=${OUT:-}
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ ${args[i]} == --out ]] && out=${args[i + 1]:-}
done
if [[ -z $out ]]; then
  echo "usage: OUT=folder $0 [--dry-run] [--steps a,b]  (or --out folder)" >&2
  exit 2
fi
mkdir -p "$out"
export OUT=$out PYTHONUNBUFFERED=1 TQDM_DISABLE=1
"$PYTHON" scripts/gpu_check.py "${args[@]}" 2>&1 | tee "$out/gpu_check.log"
exit "${PIPESTATUS[0]}"
