"""A version at native resolution: mixed-size photos with ``image_size: null`` (the
default) keep their own sizes, are stored as files, and their bytes do not depend on
how rows are batched (by count or by pixel budget)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from pipeline.config import AugmentParams
from pipeline.datasets import load_dataset
from pipeline.version import write_version
from pipeline.version.dataset import load_version
from tests.test_version_bytes import make_photos
from tests.version_data import digests

PIPE = [{"name": "rotate", "p": 0.7, "degrees": 20}, {"name": "gaussian_noise", "p": 0.7},
        {"name": "cutout", "p": 0.5}, {"name": "cutmix", "p": 0.5}]


def test_mixed_sizes_keep_their_own_size_and_bytes_do_not_depend_on_batching(tmp_path):
    ds = load_dataset(make_photos(tmp_path / "photos"))
    assert len({(s.height, s.width) for s in ds.samples}) > 1
    assignment = {s.id: "val" if i == 0 else "train" for i, s in enumerate(ds.samples)}
    got = {}
    for name, knobs in (("one", dict(batch_size=1)), ("many", dict(batch_size=64, workers=2)),
                        ("budget", dict(batch_size=64, batch_pixels=9000))):
        write_version(ds, assignment, AugmentParams(copies=2, pipeline=PIPE, **knobs), tmp_path / name)
        got[name] = digests(tmp_path / name)
    assert got["one"] == got["many"] == got["budget"]
    v = tmp_path / "one"
    card = json.loads((v / "card.json").read_text())
    assert card["storage"] == "files" and card["image_shape"] == [None, None, 3]
    by_id = {s.id: s for s in ds.samples}
    rows = [json.loads(line) for line in (v / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 1 + 9 * 3
    for r in rows:
        src = by_id[r["source_id"]]
        assert r["size"] == [src.height, src.width]
        with Image.open(v / r["file"]) as img:
            assert img.size == (src.width, src.height)
    version = load_version(v)
    assert {(s.height, s.width) for s in version.samples} == {(s.height, s.width) for s in ds.samples}
    s = version.samples[0]
    assert np.asarray(version.images.pixels(s.image)).shape == (s.height, s.width, 3)
