"""A dataset version has the same bytes whatever kernels the CPU runs.

Each version is written in a subprocess, once with the machine's own kernel choice
and once per plainer level: every library held to a plainer code path (ATen's
scalar loops, oneDNN's SSE4.1 kernels, MKL's SSE4.2 ones, OpenCV without AVX-512),
and ATen's AVX2 kernels with OpenCV without AVX2 (its remap, LUT and filters then
run their SSE4 code), which is as far as one machine can stand in for another CPU.
uint8 images are warped, coloured, blurred and noised in exact arithmetic
(``augment/fixedpoint.py``, ``augment/luts.py``), so no level may change a byte.
Every op of the registry is in the pipeline (p < 1, so applied and unapplied
samples share batches), on photos of mixed sizes resized to an odd size and kept at
their own sizes, and on box data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PLAIN_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                 "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "OPENCV_CPU_DISABLE": "AVX512-SKX"}
AVX2_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX2,FMA3"}
PIPELINE = [
    {"name": "rotate", "p": 0.7, "degrees": 30},
    {"name": "random_resized_crop", "p": 0.5},
    {"name": "affine", "p": 0.7, "scale": [0.7, 1.3], "shear": [-20, 20], "rotate": [-30, 30],
     "translate": [0.1, 0.1]},
    {"name": "hflip", "p": 0.5},
    {"name": "vflip", "p": 0.5},
    {"name": "crop", "p": 0.7, "padding": 3},
    {"name": "color_jitter", "p": 0.7, "brightness": [0.5, 1.5], "contrast": [0.5, 1.5],
     "saturation": [0.0, 2.0], "hue": [-0.3, 0.3]},
    {"name": "grayscale", "p": 0.3},
    {"name": "gaussian_blur", "p": 0.7, "sigma": [0.5, 2.5]},
    {"name": "gaussian_noise", "p": 0.7, "std": [0.0, 0.1]},
    {"name": "cutout", "p": 0.7},
]
MIXING = {"classification": [{"name": "cutmix", "p": 0.5}],
          "boxes": [{"name": "mosaic", "p": 0.5}]}

# Runs in the subprocess: write the versions, print {name: {file: sha256}}.
JOB = """
import json, sys
from pathlib import Path
from pipeline.config import AugmentParams
from pipeline.datasets import load_dataset
from pipeline.version import write_version
from tests.version_data import digests
root, pipeline, mixing = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
out = {}
for kind in ("classification", "boxes"):
    ds = load_dataset(root / kind)
    ids = [s.id for s in ds.samples]
    split = {sid: "val" if i == 0 else "test" if i == 1 else "train" for i, sid in enumerate(ids)}
    for size in ((33, 47), None):
        name = f"{kind}@{size}"
        params = AugmentParams(copies=3, pipeline=pipeline + mixing[kind], image_size=size, workers=1)
        write_version(ds, split, params, root / sys.argv[4] / name)
        out[name] = digests(root / sys.argv[4] / name)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> Path:
    from tests.test_version_bytes import make_photos
    from tests.version_data import make_annotated

    root = tmp_path_factory.mktemp("dispatch")
    make_photos(root / "classification")
    make_annotated(root / "boxes", n=10)
    return root


def _write(root: Path, out: str, **env: str) -> dict:
    full = {**os.environ, "PYTHONPATH": str(REPO), "PIPELINE_NO_PROGRESS": "1", **env}
    res = subprocess.run([sys.executable, "-c", JOB, str(root), json.dumps(PIPELINE), json.dumps(MIXING), out],
                         env=full, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_version_bytes_do_not_depend_on_the_cpu_kernels(datasets):
    own = _write(datasets, "own")
    for label, env in (("plain", PLAIN_KERNELS), ("avx2", AVX2_KERNELS)):
        other = _write(datasets, label, **env)
        assert own.keys() == other.keys()
        for name in own:
            differ = sorted(f for f in own[name] if own[name][f] != other[name].get(f))
            assert not differ, f"{name}: {differ} differ under {env}"
