"""`pipeline augment --preview`: TensorBoard panels per op and for the full pipeline."""

from __future__ import annotations

import io

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import AugmentParams, IngestParams
from pipeline.ingest import ingest
from pipeline.reports.preview import PALETTE, PANEL, pick, preview as run_preview
from pipeline.datasets import load_dataset
from tests.conftest import make_imagefolder
from tests.version_data import COLOURS, make_annotated

OPS = [{"name": "rotate", "p": 0.8, "degrees": 20}, {"name": "hflip", "p": 0.5},
       {"name": "crop", "p": 0.8, "padding": 4}]


def preview(canonical, params, n, logdir):
    """The preview with every sample in train (the split under test elsewhere)."""
    ds = load_dataset(canonical)
    return run_preview(ds, {s.id: "train" for s in ds.samples}, params, n, logdir)


def events(logdir):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    return {tag: np.asarray(Image.open(io.BytesIO(acc.Images(tag)[0].encoded_image_string)))
            for tag in acc.Tags()["images"]}, acc.Tags()["tensors"]


def test_annotated_preview_has_each_op_and_the_pipeline_with_objects_drawn(tmp_path):
    src = make_annotated(tmp_path / "canonical", n=6)
    res = preview(src, AugmentParams(pipeline=OPS), 3, tmp_path / "tb")
    assert (res.samples, res.images) == (3, 3 * 4)
    images, texts = events(tmp_path / "tb")
    groups = {t.split("/")[0] for t in images}
    assert groups == {"full_pipeline", "op1_rotate", "op2_hflip", "op3_crop"}
    assert len(images) == 12 and {t.removesuffix("/text_summary") for t in texts} == set(images)
    img = images["op2_hflip/00_shapes_img000.png"]
    half = 64 * (-(-PANEL // 64))  # the enlarged image width
    assert img.shape[1] == 2 * half + 12 and img.shape[2] == 3
    before, after = img[:, :half], img[:, -half:]
    red = np.all(before == PALETTE[0], axis=-1)  # the "square" outline colour
    ys, xs = np.nonzero(red)
    ya, xa = np.nonzero(np.all(after == PALETTE[0], axis=-1))
    assert len(xs) > 40 and len(xa) > 40
    # hflip alone always applies: the drawn outline is mirrored with the image.
    assert abs((xs.min() + xs.max()) / 2 - (half - (xa.min() + xa.max()) / 2)) < 3
    # and it sits on the filled square of the flipped image (its colour is COLOURS["square"])
    fill = np.all(after == COLOURS["square"], axis=-1)
    fy, fx = np.nonzero(fill)
    assert xa.min() - 2 <= fx.min() and fx.max() <= xa.max() + 2


def test_classification_preview_and_cli_prints_the_tensorboard_command(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=5, size=20)
    ingest(src, tmp_path / "canonical", IngestParams(workers=1))
    params = tmp_path / "params.yaml"
    params.write_text("augment:\n  pipeline:\n    - {name: rotate, p: 0.5, degrees: 10}\n")
    cmd = ["augment", "--preview", "--source", str(tmp_path / "canonical"),
           "--params", str(params), "--n", "4", "--logdir", str(tmp_path / "tb"), "--port", "6123"]
    for _ in range(2):  # a second run replaces the first run's events
        res = CliRunner().invoke(app, cmd)
        assert res.exit_code == 0, res.output
    assert f"tensorboard --logdir {tmp_path / 'tb'} --host 127.0.0.1 --port 6123" in res.stdout
    assert len(list((tmp_path / "tb").iterdir())) == 1
    images, _ = events(tmp_path / "tb")
    assert len(images) == 8 and {t.split("/")[0] for t in images} == {"full_pipeline", "op1_rotate"}


def test_pick_spreads_over_ids_and_preview_needs_a_source(tmp_path, monkeypatch):
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=5, size=12)
    ds = ingest(src, tmp_path / "canonical", IngestParams(workers=1))
    picked = pick(list(load_dataset(tmp_path / "canonical").samples), 4)
    assert len(picked) == 4 and len({s.label for s in picked}) == 2 and picked == sorted(picked, key=lambda s: s.id)
    assert len(pick(list(ds.samples), 100)) == 10
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["augment", "--preview"])
    assert res.exit_code == 2 and "--source" in res.output


@pytest.mark.parametrize("missing", ["--splits", "--out"])
def test_augment_without_preview_still_needs_its_paths(tmp_path, missing, monkeypatch):
    args = {"--splits": str(tmp_path), "--out": str(tmp_path / "v")}
    args.pop(missing)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["augment", str(tmp_path), *[x for kv in args.items() for x in kv]])
    assert res.exit_code == 2 and missing in res.output


def test_mixed_samples_show_soft_labels_in_the_caption(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=3, per_class=4, size=16)
    ingest(src, tmp_path / "canonical", IngestParams(workers=1))
    res = preview(tmp_path / "canonical", AugmentParams(pipeline=[{"name": "mixup", "p": 1.0}]), 4, tmp_path / "tb")
    assert res.images == 4 * 2
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0})
    acc.Reload()
    captions = [acc.Tensors(t)[0].tensor_proto.string_val[0].decode() for t in acc.Tags()["tensors"]]
    import re

    soft = [re.search(r"label: (\d\.\d\d)·(\w+) \+ (\d\.\d\d)·(\w+)", c) for c in captions]
    soft = [m for m in soft if m]
    assert soft and all(abs(float(m[1]) + float(m[3]) - 1) < 0.011 for m in soft)
    assert all("mixed with" in c for c in captions if "·" in c)


@pytest.mark.parametrize("kind, pipe", [
    ("classification", [{"name": "rotate", "p": 0.7, "degrees": 20}, {"name": "color_jitter", "p": 0.8,
                        "brightness": 0.3}, {"name": "mixup", "p": 0.7}]),
    ("boxes", [{"name": "mosaic", "p": 0.8}, {"name": "hflip", "p": 0.5}, {"name": "cutout", "p": 0.5}]),
    ("boxes", [{"name": "cutmix", "p": 0.8}, {"name": "rotate", "p": 0.9, "degrees": 30}]),
], ids=["mixup", "mosaic_cutout", "cutmix"])
def test_preview_is_what_the_version_holds(tmp_path, kind, pipe):
    """The full pipeline's panels are byte-equal to copy 1 of the same rows in the
    version, partners included: one render path, the same split, keys, rules, backend."""
    import json

    from pipeline.config import SplitParams
    from pipeline.split import assign_splits
    from pipeline.version import write_version

    if kind == "classification":
        ds = ingest(make_imagefolder(tmp_path / "src", classes=3, per_class=6, size=20, channels=3),
                    tmp_path / "canonical", IngestParams(workers=1))
    else:
        ds = load_dataset(make_annotated(tmp_path / "canonical", n=10))
    assignment = assign_splits(ds, SplitParams(ratios={"train": 0.7, "val": 0.15, "test": 0.15}))
    params = AugmentParams(copies=2, pipeline=pipe, batch_size=5, image_size=(24, 32), min_visibility=0.2)
    write_version(ds, assignment, params, tmp_path / "v")
    res = run_preview(ds, assignment, params, 4, tmp_path / "tb")
    stored = np.load(tmp_path / "v" / "train_images.npy")
    manifest = {r["id"]: r for r in map(json.loads, (tmp_path / "v" / "manifest.jsonl").read_text().splitlines())}
    assert len(res.rows) == 4
    for row, pixels in zip(res.rows, res.pixels):
        assert row.to_dict() == manifest[row.id], row.id
        assert pixels.tobytes() == stored[row.index].tobytes(), row.id
    assert any(r.partners for r in res.rows), "the case must exercise mixing partners"
