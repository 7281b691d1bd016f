"""`pipeline trace`: an output sample back to its source file and parameters, re-rendered exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import AugmentParams, SplitParams
from pipeline.core.errors import InputError
from pipeline.datasets import load_dataset
from pipeline.split import assign_splits
from pipeline.reports.trace import trace
from pipeline.version import write_version
from tests.conftest import REPO
from tests.version_data import make_annotated

OPS = [{"name": "rotate", "p": 0.9, "degrees": 30}, {"name": "hflip", "p": 0.5},
       {"name": "crop", "p": 0.9, "padding": 5}]


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    root = tmp_path_factory.mktemp("t")
    ds = load_dataset(make_annotated(root / "canonical", n=10))
    assignment = assign_splits(ds, SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}))
    # Batches of 4 with resize: the trace re-renders one sample alone and must still match.
    write_version(ds, assignment, AugmentParams(copies=3, pipeline=OPS, batch_size=4, image_size=(40, 56)),
                  root / "version")
    return root / "version"


def rows(version):
    return [json.loads(x) for x in (version / "manifest.jsonl").read_text().splitlines()]


def test_every_output_sample_re_renders_to_equal_bytes(version):
    for row in rows(version):
        t = trace(version, row["id"])
        assert t.rendered.tobytes() == t.stored.tobytes(), row["id"]
        assert t.sample.id == row["source_id"] and not t.dataset_changed


def test_trace_detects_a_changed_record_and_changed_pixels(version, tmp_path):
    import shutil

    from pipeline.reports.trace import format_trace

    v = tmp_path / "v"
    shutil.copytree(version, v)
    lines = (v / "manifest.jsonl").read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if json.loads(line)["copy"] == 2)
    row = json.loads(lines[k])
    row["ops"][0]["angle"] += 7.0  # a parameter the keys did not draw
    lines[k] = json.dumps(row, sort_keys=True)
    (v / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    canonical = version / json.loads((version / "card.json").read_text())["source"]["dataset"]
    t = trace(v, row["id"], canonical)  # a moved copy names its dataset
    assert t.same_pixels and not t.identical
    assert "record          DIFFERENT from the manifest row in: ops" in format_trace(t)
    images = np.load(v / f"{row['split']}_images.npy")
    images[row["index"], 0, 0, 0] ^= 1
    np.save(v / f"{row['split']}_images.npy", images)
    t = trace(v, row["id"], canonical)
    assert not t.same_pixels and "DIFFERENT pixels" in format_trace(t)


def test_unknown_id_names_the_manifest(version):
    with pytest.raises(InputError, match="no output sample 'nope#1'"):
        trace(version, "nope#1")


def test_cli_prints_source_copy_and_params(version, tmp_path):
    row = next(r for r in rows(version) if r["copy"] == 1 and r["ops"][0]["applied"])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-m", "pipeline", "trace", str(version), row["id"],
                          "--save", str(tmp_path / "r.png")], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert f"src/{row['source_id'].split('/')[1]}" in out and "format labelme" in out
    assert "copy            1" in out and f"angle={row['ops'][0]['angle']!r}" in out
    assert "identical pixels" in out and (tmp_path / "r.png").is_file()


MIX = [{"name": "rotate", "p": 0.5, "degrees": 15}, {"name": "cutmix", "p": 0.6}]  # mixup: test_version.py


@pytest.fixture(scope="module")
def mixed_version(tmp_path_factory):
    from pipeline.config import IngestParams
    from pipeline.ingest import ingest
    from tests.conftest import make_imagefolder

    root = tmp_path_factory.mktemp("m")
    ds = ingest(make_imagefolder(root / "src", classes=3, per_class=5, size=16, channels=3),
                root / "canonical", IngestParams(workers=1))
    assignment = assign_splits(ds, SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}))
    write_version(ds, assignment, AugmentParams(copies=3, pipeline=MIX, batch_size=4), root / "version")
    return root / "version"


def test_mixed_samples_re_render_from_their_recorded_partners(mixed_version):
    from pipeline.reports.trace import format_trace

    mixed = [r for r in rows(mixed_version) if r["mix_weight"] < 1.0]
    assert mixed
    for row in rows(mixed_version):
        t = trace(mixed_version, row["id"])
        assert t.identical, row["id"]
    text = format_trace(trace(mixed_version, mixed[0]["id"]))
    w = mixed[0]["mix_weight"]
    assert f"{w:.2f}·{mixed[0]['label']} + {1 - w:.2f}·{mixed[0]['mix_label']}" in text
    assert "mixed with" in text and mixed[0]["partners"][0] in text


@pytest.mark.parametrize("pipe", [[{"name": "mixup", "p": 1.0}, {"name": "cutmix", "p": 0.5}],
                                  [{"name": "mosaic", "p": 1.0}, {"name": "rotate", "p": 1.0, "degrees": 10},
                                   {"name": "cutout", "p": 0.8}]],
                         ids=["mixup_cutmix", "mosaic_cutout"])
def test_mixed_box_data_re_renders_and_keeps_both_images_objects(tmp_path, pipe):
    ds = load_dataset(make_annotated(tmp_path / "canonical", n=8))
    assignment = assign_splits(ds, SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}))
    write_version(ds, assignment, AugmentParams(copies=2, pipeline=pipe, batch_size=3), tmp_path / "v")
    aug = [r for r in rows(tmp_path / "v") if r["copy"]]
    assert any(o.get("partner") for r in aug for o in r["objects"])  # mixup keeps the partner's boxes
    for r in aug:
        assert trace(tmp_path / "v", r["id"]).identical, r["id"]


def test_classification_versions_refuse_mosaic_before_writing(tmp_path):
    from pipeline.config import IngestParams
    from pipeline.core.errors import ConfigError
    from pipeline.ingest import ingest
    from tests.conftest import make_imagefolder

    ds = ingest(make_imagefolder(tmp_path / "src", classes=2, per_class=3, size=12),
                tmp_path / "canonical", IngestParams(workers=1))
    assignment = assign_splits(ds, SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}))
    with pytest.raises(ConfigError, match=r"augment.pipeline\[0\] \(mosaic\)"):
        write_version(ds, assignment, AugmentParams(pipeline=[{"name": "mosaic"}]), tmp_path / "v")
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("backend", ["albumentations", "auto"])
def test_pinned_backend_and_albumentations_rows_record_their_seed(tmp_path, backend, monkeypatch):
    """The card pins the backend the version ran on; trace uses it and never resolves
    ``auto`` again (here the tracing machine would pick the other backend)."""
    ds = load_dataset(make_annotated(tmp_path / "canonical", n=6))
    assignment = assign_splits(ds, SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}))
    ops = [{"name": "rotate", "p": 0.9, "degrees": 20}, {"name": "hflip", "p": 0.5}]
    write_version(ds, assignment, AugmentParams(copies=2, pipeline=ops, backend=backend, image_size=(40, 56)),
                  tmp_path / "v")
    card = json.loads((tmp_path / "v" / "card.json").read_text())
    assert card["pipeline"]["backend"] in ("torch", "albumentations")
    if backend == "auto":  # make the tracing machine resolve differently: it must not matter
        import pipeline.backends as b

        other = "albumentations" if card["pipeline"]["backend"] == "torch" else "torch"
        monkeypatch.setattr(b, "choose_backend", lambda *a, **k: other)
    aug = [r for r in rows(tmp_path / "v") if r["copy"]]
    if card["pipeline"]["backend"] == "albumentations":
        assert all(op.keys() == {"op", "backend", "seed"} for r in aug for op in r["ops"])
    for r in aug:
        assert trace(tmp_path / "v", r["id"]).identical, r["id"]


def _trace_cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pipeline", "trace", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd)


def test_trace_shows_drawn_params_only_and_a_source_that_opens(mixed_version, tmp_path):
    import re

    row = next(r for r in rows(mixed_version) if r["copy"] and any("_keys" in op for op in r["ops"]))
    res = _trace_cli(mixed_version, row["id"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert not re.search(r"[ (,]_\w+=", res.stdout), res.stdout  # no internal value such as _keys
    source = next(line for line in res.stdout.splitlines() if line.startswith("source file"))
    assert (tmp_path / source.split()[2]).is_file(), source
    ops = json.loads(_trace_cli(mixed_version, row["id"], "--json", cwd=tmp_path).stdout)["ops"]
    assert [op["op"] for op in ops] == [op["op"] for op in row["ops"]]
    assert not [k for op in ops for k in op if k.startswith("_")]


def test_trace_finds_a_relative_source_from_above_the_dataset_or_names_the_pack_member(tmp_path):
    """Ingest given ``src`` (relative) in ``tmp``: traced from a sibling folder the file is
    found through the folder above the dataset; once it is gone, the stored copy is named
    as PACK:MEMBER, which tar extracts."""
    import shutil
    import tarfile

    from tests.conftest import make_imagefolder

    make_imagefolder(tmp_path / "src", classes=2, per_class=4, size=16)
    (tmp_path / "params.yaml").write_text("ingest: {workers: 1}\nsplit: {ratios: {train: 0.5, val: 0.25, "
                                          "test: 0.25}}\naugment: {copies: 1, pipeline: [{name: rotate, p: 1.0}]}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PIPELINE_NO_PROGRESS": "1"}
    for step in (["ingest", "src", "--out", "data/canonical"], ["split", "data/canonical", "--out", "data/splits"],
                 ["augment", "data/canonical", "--splits", "data/splits", "--out", "data/version"]):
        r = subprocess.run([sys.executable, "-m", "pipeline", *step], cwd=tmp_path, env=env, capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
    (tmp_path / "elsewhere").mkdir()
    row = next(r for r in rows(tmp_path / "data" / "version") if r["copy"] == 1)
    out = _trace_cli(tmp_path / "data" / "version", row["id"], cwd=tmp_path / "elsewhere").stdout
    source = next(line for line in out.splitlines() if line.startswith("source file")).split()[2]
    assert Path(source).is_absolute() and Path(source) == tmp_path / "src" / row["source_id"]
    shutil.rmtree(tmp_path / "src")
    out = _trace_cli(tmp_path / "data" / "version", row["id"], cwd=tmp_path).stdout
    assert "not found from here" in out
    stored = next(line for line in out.splitlines() if line.startswith("canonical")).split("->")[1].strip()
    pack, member = stored.split(":")
    assert pack.endswith(".tar") and not member.startswith("/")
    with tarfile.open(tmp_path / pack) as tar:
        assert tar.extractfile(member).read()[:8] == b"\x89PNG\r\n\x1a\n"
