"""A SIGKILLed augment stage leaves the previous version (or nothing); a re-run completes identically."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.config import IngestParams, SplitParams
from pipeline.ingest import ingest
from pipeline.split import write_splits
from tests.conftest import REPO, make_imagefolder
from tests.version_data import digests

AUG = [{"name": "rotate", "p": 0.9, "degrees": 20}, {"name": "crop", "p": 0.9, "padding": 3}]


def stage(tmp: Path, out: Path, seed: int, batch_size: int, workers: int) -> subprocess.Popen:
    params = tmp / f"params-{seed}-{batch_size}.yaml"
    params.write_text(yaml.safe_dump({"augment": {
        "seed": seed, "copies": 6, "image_size": [48, 48], "batch_size": batch_size,
        "workers": workers, "device": "cpu", "pipeline": AUG}}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "PIPELINE_NO_PROGRESS": "1"}
    return subprocess.Popen([sys.executable, "-m", "stages.augment", "--params", str(params),
                             "--dataset", str(tmp / "canonical"), "--splits", str(tmp / "splits"),
                             "--out", str(out)], cwd=REPO, env=env)


@pytest.mark.slow
def test_sigkill_midway_then_rerun_gives_the_same_version(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=3, per_class=50, size=16)
    ds = ingest(src, tmp_path / "canonical", IngestParams(workers=1))
    write_splits(ds, SplitParams(), tmp_path / "splits")
    out = tmp_path / "data" / "version"

    assert stage(tmp_path, tmp_path / "ref" / "version", 0, 32, 2).wait(120) == 0  # uninterrupted reference
    shutil.copytree(tmp_path / "ref" / "version", out)  # the previous version: an older copy, marked
    (out / "previous.txt").write_text("an older version\n")
    previous = digests(out)

    proc = stage(tmp_path, out, 0, 8, 1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill once the run has written part of its split files
        tmp = [p for p in out.parent.glob(".version.tmp-*") if (p / "train_labels.npy").is_file()
               and (p / "train_labels.npy").stat().st_size > 256]
        if tmp or proc.poll() is not None:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the stage finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert tmp and tmp[0].is_dir()  # the half version lives only in the hidden temp dir
    assert digests(out) == previous  # the previous version is untouched
    assert sorted(p.name for p in out.parent.iterdir() if not p.name.startswith(".")) == ["version"]

    assert stage(tmp_path, out, 0, 8, 3).wait(120) == 0  # the re-run completes ...
    assert digests(out) == digests(tmp_path / "ref" / "version")  # ... with the uninterrupted bytes
    assert [p.name for p in out.parent.iterdir()] == ["version"]  # and the killed run's temp dir is gone
