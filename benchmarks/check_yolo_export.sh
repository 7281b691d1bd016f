#!/usr/bin/env bash
# Check a YOLO export with Ultralytics itself: its dataset check, then its dataset
# loader counting the labels it found, missing, empty (backgrounds) and corrupt.
#
#   benchmarks/check_yolo_export.sh EXPORT_DIR [TASK]     # TASK: detect (default) or segment
#
# Ultralytics is AGPL-3.0: it is never a dependency of this project. It goes into a
# throwaway virtual environment outside the repository ($TMPDIR, reused between runs;
# remove it with `rm -r "$ULTRALYTICS_VENV"`). Knobs (environment):
#   ULTRALYTICS_VENV      where the throwaway venv lives (default $TMPDIR/pipeline-ultralytics-check)
#   ULTRALYTICS_VERSION   the release to install (default 8.4.190, the one checked in docs/benchmarks.md)
#   REUSE_TORCH_FROM      a virtual environment that already holds torch/torchvision: they are
#                         read from it (a .pth file, read-only) instead of downloading torch again
#   PYTHON                the interpreter that makes the venv (default python3)
set -euo pipefail

export_dir=${1:?usage: benchmarks/check_yolo_export.sh EXPORT_DIR [detect|segment]}
task=${2:-detect}
[ -f "$export_dir/data.yaml" ] || { echo "error: $export_dir/data.yaml not found (not a YOLO export)" >&2; exit 2; }
export_dir=$(cd "$export_dir" && pwd)
venv=${ULTRALYTICS_VENV:-${TMPDIR:-/tmp}/pipeline-ultralytics-check}
version=${ULTRALYTICS_VERSION:-8.4.190}
repo=$(cd "$(dirname "$0")/.." && pwd)
case "$venv/" in "$repo"/*) echo "error: ULTRALYTICS_VENV must lie outside the repository" >&2; exit 2;; esac

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import ultralytics" 2>/dev/null; then
    "${PYTHON:-python3}" -m venv "$venv"
    if [ -n "${REUSE_TORCH_FROM:-}" ]; then
        site=$("$REUSE_TORCH_FROM/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        echo "$site" > "$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/reuse-torch.pth"
    fi
    "$venv/bin/python" -m pip install --quiet "ultralytics==$version"
fi

export YOLO_CONFIG_DIR="$venv/config"  # its settings file stays in the throwaway venv
cd "${TMPDIR:-/tmp}"  # Ultralytics writes run folders relative to where it runs
YOLO_OFFLINE=1 YOLO_VERBOSE=False "$venv/bin/python" - "$export_dir" "$task" <<'PY'
import sys
from pathlib import Path

import ultralytics
from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset

root, task = Path(sys.argv[1]), sys.argv[2]
data = check_det_dataset(str(root / "data.yaml"))  # raises on a data.yaml Ultralytics cannot use
print(f"ultralytics {ultralytics.__version__}: check_det_dataset({root / 'data.yaml'}) ok; "
      f"path {data['path']}, {data['nc']} classes")
bad = 0
for split in ("train", "val", "test"):
    if not data.get(split):
        continue
    cfg = get_cfg(overrides={"task": task, "imgsz": 64, "cache": False, "rect": False, "fraction": 1.0})
    ds = build_yolo_dataset(cfg, data[split], batch=1, data=data, mode="val", rect=False)
    found = sum(1 for lb in ds.labels if len(lb["cls"]))
    objects = sum(len(lb["cls"]) for lb in ds.labels)
    segs = sum(len(lb["segments"]) for lb in ds.labels)
    n_images = len(ds.im_files)
    # Ultralytics' own counts (labels found, missing, empty, corrupt) from its label cache
    cache = ds.label_files[0] and Path(ds.label_files[0]).parent.with_suffix(".cache")
    nf = nm = ne = nc = None
    if cache and cache.exists():
        from ultralytics.data.utils import load_dataset_cache_file

        cached = load_dataset_cache_file(cache)
        nf, nm, ne, nc, _ = cached["results"]
        for msg in cached["msgs"]:  # Ultralytics' own words for each corrupt file
            print(f"  {msg}")
        cache.unlink()  # leave the export as it was
    print(f"{split}: images {n_images}, labels found {nf}, missing {nm}, empty {ne}, corrupt {nc}; "
          f"labelled images {found}, objects {objects}, segments {segs}")
    bad += (nm or 0) + (nc or 0)
sys.exit(1 if bad else 0)
PY
