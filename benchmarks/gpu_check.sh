#!/usr/bin/env bash
# The GPU path in one command (under 8 minutes on one H200): CUDA-marked tests (among
# them CPU == CUDA bytes for the exact uint8 ops), CPU-vs-CUDA parity of every op
# (failing when an exact op differs), the augment benchmark on CUDA (224x224 batch 256,
# 640x640 batch 32) against albumentations per CPU core and Kornia on the same GPU,
# and mnist5k training on CUDA (bf16, channels_last).
#
#   bash benchmarks/gpu_check.sh          # on a machine with CUDA
#   bash benchmarks/gpu_check.sh --dry    # anywhere: every step runs on the CPU at small sizes, CUDA rows skipped
#
# On the lent machine (no registry there): run `bash benchmarks/gpu_wheels.sh` here first,
# then the device tool's run with command `bash benchmarks/gpu_check.sh`, carry [".whl"],
# timeout_s 540. Its python3 is used when there is no .venv.
#
# Writes each step's output to $OUT (default gpu_check_out/) as well as the terminal.
set -uo pipefail
cd "$(dirname "$0")/.."
export NO_ALBUMENTATIONS_UPDATE=1 DVC_NO_ANALYTICS=1 PIPELINE_NO_PROGRESS=1 PYTHONUNBUFFERED=1
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
# The lent machine reaches no registry: the packages its python3 lacks travel as wheels
# in .whl/ (made here by benchmarks/gpu_wheels.sh, carried with the call) and go to a
# folder of their own on PYTHONPATH, so its torch and numpy stay the ones it has.
if ! "$PY" -c 'import pydantic, albumentations, mlxtend' 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
  SITE=${SITE:-/tmp/gpu_check_site}
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target "$SITE" .whl/*.whl || { echo "gpu_check: installing .whl/ failed"; exit 1; }
  export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c 'import sys, torch, torchvision, pydantic, albumentations, mlxtend
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"pydantic {pydantic.VERSION}, albumentations {albumentations.__version__}")' \
  || { echo "gpu_check: a package is missing (on a machine without a registry: bash benchmarks/gpu_wheels.sh here, carry .whl)"; exit 1; }
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
dry=0
[ "${1:-}" = "--dry" ] && dry=1
if [ "$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))')" != 1 ]; then
  [ $dry = 1 ] || echo "no CUDA here: running the dry mode"
  dry=1
fi
fail=0
step() { echo; echo "=== $1"; shift; "$@" 2>&1 | tee "$OUT/$STEP.txt"; [ "${PIPESTATUS[0]}" = 0 ] || fail=1; }

# Only the files that hold CUDA-marked tests: collecting the others would import the
# dev-only consumers (pycocotools, moto) that the lent machine does not have.
mapfile -t gpu_tests < <(grep -l "mark.gpu" tests/test_*.py)
STEP=tests step "1/4 CUDA-marked tests (skipped without CUDA)" \
  "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs "${gpu_tests[@]}"
if [ $dry = 1 ]; then
  STEP=parity step "2/4 CPU-vs-CUDA parity of every op" "$PY" benchmarks/gpu_parity.py --dry --size 32 --batch 4
  STEP=augment step "3/4 augment benchmark (small sizes in the dry mode)" \
    "$PY" benchmarks/augment.py --cuda-only --sizes 64 --batches 32 --repeat 1
  STEP=train step "4/4 mnist5k training (CPU, one epoch in the dry mode)" \
    "$PY" benchmarks/train.py -S device=cpu -S epochs=1 --json "$OUT/train.json"
else
  STEP=parity step "2/4 CPU-vs-CUDA parity of every op" "$PY" benchmarks/gpu_parity.py --size 224 --batch 32
  STEP=augment step "3/4 augment benchmark on CUDA vs albumentations per core and Kornia" \
    "$PY" benchmarks/augment.py --cuda-only --sizes 224 640 --batches 256 32 --repeat 5
  STEP=train step "4/4 mnist5k training on CUDA (bf16, channels_last)" \
    "$PY" benchmarks/train.py -S device=cuda -S bf16=true -S channels_last=true --json "$OUT/train.json"
fi
echo
[ $fail = 0 ] && echo "gpu_check: every step ran$([ $dry = 1 ] && echo ' (dry mode: CUDA rows skipped)')" \
  || echo "gpu_check: a step failed (see $OUT/)"
exit $fail
