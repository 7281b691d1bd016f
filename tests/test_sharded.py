"""augment and ingest under torchrun: 2 CPU processes (gloo on 127.0.0.1) write the bytes of one.

Each rank renders (decodes) a share of the rows (candidates) and rank 0 assembles
them; every file of the output must have the same sha256 as a single process's,
mixing ops and box data included, and a rank's failure must leave nothing behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import IngestParams, SplitParams, load_section
from pipeline.ingest import ingest
from pipeline.datasets import load_dataset
from pipeline.split import read_splits, write_splits
from pipeline.reports.stats import write_stats
from pipeline.version import write_version
from tests.conftest import REPO, make_imagefolder
from tests.version_data import digests, make_annotated

TIMEOUT = 150  # a hung rank fails the test instead of the suite

MIX = """
augment:
  copies: 3
  batch_size: 4
  workers: 1
  pipeline:
    - {name: rotate, p: 0.8, degrees: 12}
    - {name: color_jitter, p: 0.5, brightness: [0.7, 1.3]}
    - {name: mixup, p: 0.7}
"""
BOXES = """
augment:
  copies: 2
  batch_size: 3
  workers: 1
  pack_max_pixels: 100      # 48x64 images go to PNG files: the files storage is assembled too
  pipeline:
    - {name: mosaic, p: 0.7}
    - {name: rotate, p: 0.5, degrees: 10}
    - {name: cutout, p: 0.8}
"""
INGEST = """
ingest:
  workers: 1
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(stage: str, args: list[str], ranks: int = 2, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m stages.<stage>`` under torchrun with ``ranks`` CPU processes."""
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO), OMP_NUM_THREADS="1",
               PIPELINE_RANK_TIMEOUT_S="60")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m"]
    r = subprocess.run([*launcher, f"stages.{stage}", *args], capture_output=True, text=True, env=env, cwd=REPO,
                       timeout=TIMEOUT)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def _version_inputs(root: Path, ds_root: Path, params: str) -> list[str]:
    write_splits(load_dataset(ds_root), SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}),
                 root / "splits")
    (root / "params.yaml").write_text(params)
    return ["--params", str(root / "params.yaml"), "--dataset", str(ds_root), "--splits", str(root / "splits")]


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


@pytest.mark.parametrize("case", ["mixup", "boxes"])
def test_augment_two_ranks_write_the_bytes_of_one(tmp_path, case):
    if case == "mixup":
        src = make_imagefolder(tmp_path / "src", classes=3, per_class=5, size=12)
        ds_root = tmp_path / "canonical"
        ingest(src, ds_root, IngestParams(workers=1))
        args = _version_inputs(tmp_path, ds_root, MIX)
    else:
        ds_root = make_annotated(tmp_path / "canonical", n=9)
        args = _version_inputs(tmp_path, ds_root, BOXES)
    one = tmp_path / "one"
    two = tmp_path / "two"
    card = write_version(load_dataset(ds_root), read_splits(tmp_path / "splits"),
                         load_section("augment", tmp_path / "params.yaml"), one, inputs=[tmp_path / "splits"])
    r = run("augment", [*args, "--out", str(two)])
    assert r.stdout.count("augment: ") == 1  # rank 0 alone reports
    a, b = digests(one), digests(two)
    assert a == b
    mixing = "mosaic" if case == "boxes" else "mixup"
    assert card.splits["train"].mixed_by_op[mixing] > 0
    assert any(k.startswith("images/train/") for k in a) if case == "boxes" else "train_images.npy" in a
    assert _leftovers(tmp_path) == []


def test_a_failing_rank_leaves_nothing(tmp_path):
    ds_root = make_annotated(tmp_path / "canonical", n=9)
    # No mixing op: rank 0 never reads rank 1's images as partners
    args = _version_inputs(tmp_path, ds_root, BOXES.split("  pipeline:")[0] + "  pipeline: [{name: rotate}]\n")
    last = sorted((ds_root / "images").iterdir())[-1]  # the last of its split: in rank 1's share
    last.write_bytes(b"not an image")
    r = run("augment", [*args, "--out", str(tmp_path / "v")], check=False)
    assert r.returncode != 0
    assert "rank 1 of 2 failed" in r.stderr
    assert not (tmp_path / "v").exists() and _leftovers(tmp_path) == []


def test_ingest_two_ranks_write_the_bytes_of_one(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=3, per_class=7, size=12)
    (src / "class1" / "broken.png").write_bytes(b"\x89PNG broken")  # quarantined by either rank
    (src / "class2" / "002.png").write_bytes((src / "class2" / "001.png").read_bytes())  # a duplicate
    (tmp_path / "params.yaml").write_text(INGEST)
    ds = ingest(src, tmp_path / "c1", load_section("ingest", tmp_path / "params.yaml"))
    write_stats(ds, tmp_path / "stats1.json")
    assert len(ds.quarantine) == 1 and ds.samples
    r = run("ingest", ["--params", str(tmp_path / "params.yaml"), "--src", str(src), "--out",
                       str(tmp_path / "c2"), "--stats", str(tmp_path / "stats2.json")])
    assert r.stdout.count("ingest:") == 1  # rank 0 alone reports
    assert digests(tmp_path / "c1") == digests(tmp_path / "c2")
    assert (tmp_path / "stats1.json").read_bytes() == (tmp_path / "stats2.json").read_bytes()
    assert _leftovers(tmp_path) == []


def test_ingest_loss_stops_every_rank_and_keeps_the_previous_output(tmp_path):
    """Rank 0 decides the loss policy on the whole run; every rank stops with exit 3."""
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=4, size=12)
    ingest(src, tmp_path / "c", IngestParams(workers=1))
    before = digests(tmp_path / "c")
    (tmp_path / "params.yaml").write_text(INGEST + "  min_size: 16\n")  # every image too small
    r = run("ingest", ["--params", str(tmp_path / "params.yaml"), "--src", str(src), "--out", str(tmp_path / "c"),
                       "--stats", str(tmp_path / "stats.json")], check=False)
    assert r.returncode != 0
    assert "ingest: error: data lost: no sample kept; 8 of 8 inputs quarantined" in r.stderr
    assert "rank 0 of 2 failed: data lost" in r.stderr  # rank 1 stops too, and says why
    # Rank 0 exits 3 (rank 1 too, unless torchrun's SIGTERM reaches it first)
    assert "exitcode  : 3" in r.stderr and "exitcode  : 2" not in r.stderr, r.stderr[-3000:]
    assert digests(tmp_path / "c") == before and _leftovers(tmp_path) == []
    assert not (tmp_path / "stats.json").exists()
