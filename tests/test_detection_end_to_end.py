"""Detection all the way through, by the CLI: three layouts people have, merged ->
split -> augment (letterbox, mosaic, rotate, cutout) -> exported to YOLO and COCO ->
ingested back: the same images, splits and objects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from tests.conftest import REPO


def cli(cwd, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PIPELINE_NO_PROGRESS": "1"}
    res = subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"pipeline {' '.join(map(str, args))}:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def rows(version):
    return [json.loads(x) for x in (version / "manifest.jsonl").read_text().splitlines()]


def per_image(samples) -> Counter:
    """What a trainer sees per image: its split and its objects' classes and boxes (0.1 px)."""
    return Counter((split, tuple(sorted((lab, tuple(round(v, 1) for v in box)) for lab, box in objs)))
                   for split, objs in samples)


@pytest.mark.slow
def test_three_layouts_to_an_augmented_version_to_yolo_and_coco_and_back(tmp_path):
    from tests.layout_trees import coco_2017, voc_devkit, yolo_ultralytics

    trees = {"voc": voc_devkit, "coco": coco_2017, "yolo": yolo_ultralytics}
    for name, build in trees.items():
        build(tmp_path / name)
    params = {
        # the VOC devkit's annotation without an image is 1 of 11 inputs quarantined: accepted
        "ingest": {"sources": [{"format": "auto", "path": str(tmp_path / n)} for n in trees], "workers": 1,
                   "on_loss": "warn"},
        "split": {"ratios": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "augment": {"copies": 3, "image_size": [320, 320], "resize": "letterbox", "min_visibility": 0.1,
                    "pipeline": [{"name": "mosaic", "p": 0.5}, {"name": "rotate", "p": 0.7, "degrees": 10},
                                 {"name": "cutout", "p": 0.7}]},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cli(tmp_path, "ingest", "--out", "ds", "--params", "params.yaml")
    cli(tmp_path, "split", "ds", "--out", "sp", "--params", "params.yaml")
    cli(tmp_path, "augment", "ds", "--splits", "sp", "--out", "v", "--params", "params.yaml")
    version = rows(tmp_path / "v")
    assert any(op["op"] == "mosaic" and op["applied"] for r in version for op in r["ops"])
    assert {r["split"] for r in version} == {"train", "val", "test"}
    want = per_image((r["split"], [(o["label"], o["box"]) for o in r["objects"]]) for r in version)

    for fmt in ("yolo", "coco"):
        cli(tmp_path, "export", "--format", fmt, "v", "--out", f"x_{fmt}")
        cli(tmp_path, "ingest", f"x_{fmt}", "--format", "auto", "--out", f"back_{fmt}", "--params", "params.yaml")
        back = [json.loads(x) for x in (tmp_path / f"back_{fmt}" / "manifest.jsonl").read_text().splitlines()]
        assert len(back) == len(version), fmt
        got = per_image((s["split"], [(o["label"], o["box"]) for o in s["objects"]]) for s in back)
        if got != want:  # YOLO keeps 6 decimals of normalised coordinates: allow 0.1 px
            loose = lambda c: Counter((sp, tuple((lab, tuple(round(v) for v in box)) for lab, box in objs))  # noqa: E731
                                      for (sp, objs), n in c.items() for _ in range(n))
            assert loose(got) == loose(want), fmt
        quarantine = (tmp_path / f"back_{fmt}" / "quarantine.jsonl").read_text()
        assert quarantine == "", quarantine
