#!/usr/bin/env bash
# GPU check (issue 7): on a CUDA machine, train a full-width CRNN (width 1.0, height 32)
# for a few hundred steps on digits-devanagari with method none, afdm, and afdm with the
# speed switches (bf16 autocast + channels_last), then run `afdm bench --device cuda`.
# Sized to finish well under 8 minutes on one H200 (every step has its own timeout).
#
#   OUT=/some/folder scripts/gpu_check.sh            # the real check (needs CUDA)
#   OUT=/tmp/gpu-dry scripts/gpu_check.sh --dry-run  # the same commands, CPU, tiny budgets
#
# What lands in $OUT (few, small files, so that a remote runner can fetch them all):
#   gpu_check.log           everything printed
#   environment.txt         nvidia-smi, torch and CUDA versions
#   record-<run>.json       the training records (metrics, learning curve, timings)
#   bench-cuda.json         `afdm bench --device cuda` (bench-dry.json on --dry-run)
#   summary.txt             CER, steps/s and the headline benchmark figures
# The run folders (checkpoints of a full-width CRNN are ~100 MB) go to $WORK
# (default: a temporary folder).
#
# Needs: `afdm` from an environment with a CUDA build of torch (AFDM=/path/to/afdm and
# PYTHON=/path/to/python; default .venv/bin/...), and the CMATERdb Devanagari numerals
# (found as for every run: AFDM_DATA_MIRROR=<folder holding cmaterdb/>, ../shared/data,
# or ~/.cache/afdm; see afdm_lib/data/digits.py). No network is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

DRY=0
case "${1:-}" in
  --dry-run) DRY=1 ;;
  "") ;;
  *) echo "usage: OUT=folder $0 [--dry-run]" >&2; exit 2 ;;
esac
OUT=${OUT:?set OUT to the folder that receives the results}
AFDM=${AFDM:-.venv/bin/afdm}
PYTHON=${PYTHON:-.venv/bin/python}
WORK=${WORK:-$(mktemp -d)}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
mkdir -p "$OUT" "$WORK"
exec > >(tee "$OUT/gpu_check.log") 2>&1

if [[ $DRY == 1 ]]; then
  # the same commands on the CPU, just big enough to exercise every path
  DEVICE=cpu
  TRAIN=(--width 0.125 --train-size 64 --val-size 16 --test-size 16 --batch-size 16
         --max-steps 6 --eval-every 3 --warmup-steps 2 --afdm-warmup-steps 1 --workers 0)
  BENCH=(--quick)
  BENCH_OUT=$OUT/bench-dry.json
  T_TRAIN=300 T_BENCH=300
else
  DEVICE=cuda
  # 300 recognizer steps of batch 32: warm-up 100 steps, AFDM warm-up 20, then alternate
  TRAIN=(--width 1.0 --height 32 --train-size 1000 --val-size 300 --test-size 1000
         --batch-size 32 --lr 1e-3 --max-steps 300 --eval-every 100 --warmup-steps 100
         --afdm-warmup-steps 20 --workers 4)
  BENCH=()
  BENCH_OUT=$OUT/bench-cuda.json
  T_TRAIN=75 T_BENCH=240  # at most 3 x 75 + 240 s (compiling takes a minute)
fi
echo "gpu_check: device=$DEVICE dry_run=$DRY out=$OUT work=$WORK started $(date -u +%FT%TZ)"

{
  nvidia-smi 2>/dev/null || echo "nvidia-smi: not available"
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda);
print('cuda available', torch.cuda.is_available());
print('gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)"
  git rev-parse HEAD 2>/dev/null || true
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"
if [[ $DRY == 0 ]] && ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "gpu_check: no CUDA device is visible to $PYTHON; nothing was run" >&2
  exit 1
fi

failed=()
train_run() {  # name, extra options...
  local name=$1; shift
  echo "== train $name: $(date -u +%T)"
  if timeout "$T_TRAIN" "$AFDM" train --out "$WORK/$name" --device "$DEVICE" \
       --dataset digits-devanagari --quiet "${TRAIN[@]}" "$@"; then
    cp "$WORK/$name/record.json" "$OUT/record-$name.json"
  else
    echo "gpu_check: training run $name FAILED (exit $?)"
    failed+=("$name")
    [[ -f $WORK/$name/record.json ]] && cp "$WORK/$name/record.json" "$OUT/record-$name.json"
  fi
  return 0
}
train_run none --method none
train_run afdm --method afdm
train_run afdm-amp --method afdm --amp --channels-last

echo "== bench: $(date -u +%T)"
if ! timeout "$T_BENCH" "$AFDM" bench --device "$DEVICE" --out "$BENCH_OUT" "${BENCH[@]}"; then
  echo "gpu_check: bench FAILED"
  failed+=(bench)
fi

"$PYTHON" - "$OUT" "$BENCH_OUT" > "$OUT/summary.txt" <<'EOF'
import json, pathlib, sys
out, bench = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for path in sorted(out.glob("record-*.json")):
    r = json.loads(path.read_text())
    m, t = r.get("metrics", {}), r.get("timings", {})
    steps, secs = m.get("steps"), t.get("train_seconds")
    rate = f"{steps / secs:.1f} steps/s" if steps and secs else "-"
    print(f"{path.stem[7:]:10s} status={r['status']} cer={m.get('cer')} "
          f"best_val_cer={m.get('best_val_cer')} steps={steps} afdm_steps={m.get('afdm_steps')} "
          f"train_seconds={secs} ({rate}) error={r.get('error')}")
if bench.is_file():
    b = json.loads(bench.read_text())
    ref = b["reference_model"]
    for key in ("device", "env_gpu", "matmul_peak_gflops", "matmul_peak_gflops_bf16",
                "afdm_overhead", "afdm_flops_ratio", "data_over_train", "seconds"):
        print(f"{key} = {b.get(key)}")
    for key in sorted(b):
        if key.startswith(ref + "_") and ("images_per_s" in key or "mfu" in key
                                          or "mem" in key):
            print(f"{key} = {b[key]}")
EOF
cat "$OUT/summary.txt"
echo "gpu_check: finished $(date -u +%FT%TZ); failed: ${failed[*]:-none}"
[[ ${#failed[@]} == 0 ]]
