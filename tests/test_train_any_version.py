"""Training, evaluation and predict read any classification version: packed rows read
per batch (never the whole array), images stored as files at mixed sizes decoded per
batch and brought to one input size by the one resize."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.config import AugmentParams, EvaluateParams, IngestParams, SplitParams, TrainParams, load_section
from pipeline.core.errors import ConfigError
from pipeline.train.data import load_split, read_card
from pipeline.train.inputsize import data_side
from pipeline.train.loop import train
from tests.conftest import REPO, class_image, make_version


def make_mixed_version(root, per_class: int = 12, out: str = "v"):
    """3 classes of RGB images at sizes 20..58 (each its own): a version stored as files."""
    from pipeline.ingest import ingest
    from pipeline.split import assign_splits
    from pipeline.version import write_version

    for c in range(3):
        (root / "src" / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = 20 + 2 * ((7 * i + 5 * c) % 20)
            img = Image.fromarray(class_image(c, i, 16, channels=3)).resize((side + 4 * (i % 3), side))
            img.save(root / "src" / f"class{c}" / f"{i:03d}.png")
    ds = ingest(root / "src", root / "canonical", IngestParams(workers=1))
    splits = assign_splits(ds, SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}))
    write_version(ds, splits, AugmentParams(copies=0), root / out)
    return root / out


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return make_mixed_version(tmp_path_factory.mktemp("mixed"))


def fit(version, out, **knobs):
    params = TrainParams(model="seed_cnn", optimizer="adam", lr=3e-3, epochs=3, batch_size=8, threads=1, **knobs)
    history = train(version, params, out / "m.pt", out / "tb", out / "t.json", out / "c.csv")
    return history, torch.load(out / "m.pt", weights_only=True)


def test_the_data_side_is_the_rounded_median_within_limits():
    assert data_side([20, 40, 60]) == 32  # median 40 -> 32
    assert data_side([50, 52, 60, 70]) == 64  # median 56 -> 64
    assert data_side([3, 4, 5]) == 32 and data_side([900, 1000]) == 224


def test_mixed_sizes_stored_as_files_train_evaluate_and_predict(mixed, tmp_path):
    card = json.loads((mixed / "card.json").read_text())
    assert card["storage"] == "files" and card["image_shape"][:2] == [None, None]
    tr = load_split(mixed, "train")
    assert tr.packed is None and len(set(tr.sizes)) > 1
    history, ckpt = fit(mixed, tmp_path)
    assert len(history) == 3 and history[-1].val_acc > 0.5
    assert ckpt["shape"] == [32, 32, 3] and ckpt["resized"] and ckpt["resize"] == ["stretch", 114]

    from pipeline.train.evaluate import evaluate
    from pipeline.train.predict import predict

    result = evaluate(mixed, tmp_path / "m.pt", EvaluateParams(device="cpu", worst=4), tmp_path / "e.json",
                      tmp_path / "c.csv", tmp_path / "etb")
    assert result["test_samples"] == len(load_split(mixed, "test")) and result["accuracy"] > 0.5
    rows = [json.loads(line) for line in (mixed / "manifest.jsonl").read_text().splitlines()]
    test_rows = [r for r in rows if r["split"] == "test"]
    got = predict(tmp_path / "m.pt", [mixed / r["file"] for r in test_rows])
    classes = json.loads((mixed / "classes.json").read_text())
    assert sum(p.label == r["label"] for p, r in zip(got, test_rows)) / len(test_rows) > 0.5
    assert classes  # predict names classes of the version


def test_train_image_size_and_resize_reach_the_checkpoint_and_the_batches(mixed, tmp_path):
    _, ckpt = fit(mixed, tmp_path, image_size=(24, 40), resize="letterbox", pad_value=0)
    assert ckpt["shape"] == [24, 40, 3] and ckpt["resize"] == ["letterbox", 0]
    from pipeline.train.data import InputSize
    from pipeline.version.resize import to_chw

    tr = load_split(mixed, "train")
    size = InputSize(24, 40, 3, ("letterbox", 0))
    got = tr.read([3, 0], size)
    with Image.open(tr.files[0]) as img:
        assert torch.equal(got[1], to_chw(img, 24, 40, 3, "letterbox", 0)[0])  # the one resize


def test_file_rows_do_not_depend_on_the_worker_count(mixed, tmp_path):
    _, a = fit(mixed, tmp_path / "zero", workers=1)
    _, b = fit(mixed, tmp_path / "two", workers=2)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k


def test_packed_version_resized_at_train_time(tmp_path):
    v = make_version(tmp_path, 8, {"train": 0.6, "val": 0.2, "test": 0.2})
    assert read_card(v).shape == (16, 16, 1)
    _, ckpt = fit(v, tmp_path, image_size=(32, 32))
    assert ckpt["shape"] == [32, 32, 1] and ckpt["resized"]
    _, plain = fit(v, tmp_path / "plain")
    assert plain["shape"] == [16, 16, 1] and not plain["resized"]


BUDGET = """
import resource, sys
import numpy as np
from pipeline.train.npyrows import NpyRows

limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
rows = NpyRows(sys.argv[1])
n = len(rows)
for start in (0, n // 2, n - 256):
    batch = rows.take(np.arange(start, start + 256)[::-1])
    assert batch.shape == (256, *rows.shape[1:]) and batch[0, 0, 0, 0] == (start + 255) % 251
try:
    np.load(sys.argv[1])  # the whole array does not fit the budget
except MemoryError:
    print("whole array refused")
"""


def test_packed_rows_are_read_per_batch_within_a_memory_budget(tmp_path):
    """A 1 GiB array read under an address-space limit of 1/4 of it (sparse: no disk cost)."""
    rows, shape = 1 << 14, (128, 128, 4)  # 64 KiB a row
    path = tmp_path / "train_images.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (rows, *shape)})
        offset = f.tell()
        f.truncate(offset + rows * int(np.prod(shape)))
        for r in (0, rows // 2, rows - 256):  # a marker in each row that is read
            for i in range(r, r + 256):
                f.seek(offset + i * int(np.prod(shape)))
                f.write(bytes([i % 251]))
    baseline = subprocess.run([sys.executable, "-c", "import numpy, resource; print(open('/proc/self/statm').read().split()[0])"],
                              capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    vm = int(baseline.stdout) * os.sysconf("SC_PAGE_SIZE")
    limit = vm + (256 << 20)  # what Python and numpy map, and a quarter of the array
    r = subprocess.run([sys.executable, "-c", BUDGET, str(path), str(limit)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "whole array refused" in r.stdout


def test_model_input_below_the_models_minimum_is_refused_before_any_stage(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("augment:\n  image_size: [4, 4]\n")
    for section in ("ingest", "augment", "train"):
        with pytest.raises(ConfigError, match=r"augment.image_size \[4, 4\].*set train.image_size"):
            load_section(section, p)
    r = subprocess.run([sys.executable, "-m", "stages.split", "--params", str(p), "--dataset", str(tmp_path / "c"),
                        "--out", str(tmp_path / "s")], capture_output=True, text=True, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.returncode == 2 and "train.image_size" in r.stderr, r.stderr
    p.write_text("augment:\n  image_size: [4, 4]\ntrain:\n  image_size: [32, 32]\n")
    assert load_section("train", p).image_size == (32, 32)
    with pytest.raises(ConfigError, match="train.image_size"):
        from pipeline.config import parse_section

        parse_section("train", {"image_size": [4, 64]})
