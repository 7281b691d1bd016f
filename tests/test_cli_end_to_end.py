"""One end-to-end run of the real CLI on a handful of generated images, and the
errors a user sees for bad input."""

import io
import json
import os
import subprocess
import sys
import time

import pytest
from PIL import Image

from tests.conftest import REPO, make_imagefolder, tree_digest

PARAMS = """
ingest: {workers: 1}
split: {seed: 1, ratios: {train: 0.6, val: 0.2, test: 0.2}}
augment:
  copies: 1
  pipeline:
    - {name: rotate, p: 0.5, degrees: 10}
    - {name: crop, p: 0.5, padding: 2}
train: {epochs: 2, batch_size: 16}
evaluate: {batch_size: 64}
"""


def cli(*args, cwd):
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1")
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def run_stages(src, cwd) -> list[str]:
    """ingest -> split -> augment -> train -> evaluate through the CLI in ``cwd`` (its
    params.yaml); each stage's stdout."""
    steps = [
        ("ingest", src, "--out", "canonical"),
        ("split", "canonical", "--out", "splits"),
        ("augment", "canonical", "--splits", "splits", "--out", "version"),
        ("train", "version", "--checkpoint", "m.pt", "--logdir", "tb", "--metrics", "train.json",
         "--curve", "curve.csv"),
        ("evaluate", "version", "--checkpoint", "m.pt", "--metrics", "eval.json", "--confusion",
         "confusion.csv", "--logdir", "tb_eval"),
    ]
    out = []
    for step in steps:
        r = cli(*step, cwd=cwd)
        assert r.returncode == 0, (step, r.stdout, r.stderr)
        out.append(r.stdout)
    return out


def test_help_is_fast_and_lists_every_stage():
    t = time.perf_counter()
    r = cli("--help", cwd=REPO)
    assert r.returncode == 0
    assert time.perf_counter() - t < 10  # generous under load; the real figure is ~0.4 s
    for stage in ("download", "ingest", "split", "augment", "train", "evaluate"):
        assert stage in r.stdout
    assert "torch" not in subprocess.run(
        [sys.executable, "-c", "import sys, pipeline.cli; print(' '.join(sys.modules))"],
        capture_output=True, text=True, cwd=REPO).stdout.split()


@pytest.mark.slow
def test_cli_end_to_end(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=3, per_class=10, size=16)
    (src / "class1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    before = tree_digest(src)
    (tmp_path / "params.yaml").write_text(PARAMS)
    run_stages(src, tmp_path)
    assert tree_digest(src) == before
    q = [json.loads(l) for l in (tmp_path / "canonical/quarantine.jsonl").read_text().splitlines()]
    assert [(x["path"], x["reason"]) for x in q] == [("class1/broken.png", "truncated-or-corrupt")]
    m = json.loads((tmp_path / "eval.json").read_text())
    assert m["test_samples"] == 6 and 0 <= m["accuracy"] <= 1


def test_bad_params_name_the_key(tmp_path):
    make_imagefolder(tmp_path / "src", classes=2, per_class=2)
    (tmp_path / "params.yaml").write_text("ingest: {min_sise: 3}\n")
    r = cli("ingest", "src", "--out", "out", cwd=tmp_path)
    assert r.returncode == 2
    assert "ingest.min_sise" in r.stderr and "unknown key" in r.stderr and "Traceback" not in r.stderr


def test_missing_source_dir(tmp_path):
    r = cli("ingest", "does-not-exist", "--out", "out", cwd=tmp_path)
    assert r.returncode == 2 and "does-not-exist" in r.stderr and "not found" in r.stderr


def test_stage_module_reports_errors_without_traceback(tmp_path):
    (tmp_path / "params.yaml").write_text("augment:\n  pipeline:\n    - {name: rotate, degrees: 999}\n")
    r = subprocess.run([sys.executable, "-m", "stages.augment", "--dataset", "x", "--splits", "y",
                        "--out", "z"], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 2 and "augment.pipeline[0]" in r.stderr and "degrees" in r.stderr


def test_unreadable_image_in_default_tree_is_quarantined(tmp_path):
    """The mnist5k tree with one corrupted digit still ingests; the bad file is reported."""
    from pipeline.config import IngestParams
    from pipeline.download import download
    from pipeline.ingest import ingest

    raw = download("mnist5k", tmp_path / "raw")
    assert sorted(p.name for p in raw.iterdir()) == [".pipeline-output.json"] + [str(d) for d in range(10)]
    assert sum(1 for _ in raw.rglob("*.png")) == 5000
    (raw / "7" / "corrupt.png").write_bytes(b"not a png at all")
    ds = ingest(raw, tmp_path / "canonical", IngestParams())
    assert len(ds.samples) == 5000
    assert [(r.path, r.reason) for r in ds.quarantine] == [("7/corrupt.png", "not-an-image")]
    with Image.open(io.BytesIO(ds.read_image(ds.samples[0]))) as img:
        assert img.size == (28, 28) and img.mode == "L"


@pytest.mark.slow
def test_given_train_and_val_folders_train_on_all_of_train_and_score_val(tmp_path):
    """The photo user's usual tree, root/{train,val}/<class>/<image>: with no test share
    and `evaluate.split: val`, every given train image trains and the given val is what
    evaluate scores (nothing carved out of train)."""
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=8, size=16, splits=("train", "val"))
    (tmp_path / "params.yaml").write_text(
        "ingest: {workers: 1}\nsplit: {ratios: {train: 0.9, val: 0.1}}\naugment: {copies: 0}\n"
        "train: {epochs: 1, batch_size: 8}\nevaluate: {split: val}\n")
    out = run_stages(src, tmp_path)
    assert json.loads((tmp_path / "splits/splits.json").read_text())["counts"] == {"train": 16, "val": 16}
    m = json.loads((tmp_path / "eval.json").read_text())
    assert m["val_samples"] == 16 and "test_samples" not in m
    assert "evaluate: val accuracy" in out[-1] and "on 16 images" in out[-1]
