#!/usr/bin/env bash
# Fetch, here, the wheels benchmarks/gpu_check.sh needs on the lent GPU machine.
#
# That machine reaches no package registry. Its python3 (3.12, x86-64) already holds
# torch, torchvision, numpy, opencv-python-headless, pillow, typer, PyYAML, tqdm,
# tensorboard, matplotlib, xxhash, scipy, scikit-learn, pandas, pytest and hypothesis
# (the device tool's KINDS.md lists them), but not the packages below. They travel as
# wheels in .whl/ (git-ignored, 16 MB of the 64 MiB a call may carry), and
# gpu_check.sh installs them into a folder on PYTHONPATH when its python lacks them:
#
#   bash benchmarks/gpu_wheels.sh            # here, once, where pip reaches the registry
#   run: bash benchmarks/gpu_check.sh        # there, with carry: [".whl"]
#
# The versions are pyproject.toml's pins and, for their own needs, the ones our venv
# resolved (Kornia, a benchmark contender only, is no dependency: 0.9.0 is the version
# measured against here). --no-deps: each package's
# own needs are named here, and the ones already on that machine are left to it.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.whl}
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
WHEELS=(
  pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5
  typing-extensions==4.16.0
  albumentations==2.0.8 albucore==0.0.24 stringzilla==5.3.2 simsimd==6.5.16
  mlxtend==0.25.0
  kornia==0.9.0 kornia-rs==0.2.0
)
mkdir -p "$DEST"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
"$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp "${platforms[@]}" -d "$DEST" "${WHEELS[@]}"
ls -l "$DEST"
du -sh "$DEST"
