"""`pipeline predict`: any size, mode or EXIF orientation; a clear error for a non-image."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

from pipeline.config import TrainParams
from pipeline.core.errors import InputError
from pipeline.train.loop import train
from pipeline.train.predict import Prediction, predict
from tests.conftest import REPO, class_image, make_version


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("pred")
    make_version(root, 20, {"train": 0.8, "test": 0.2})
    train(root / "v", TrainParams(model="seed_cnn", optimizer="adam", lr=3e-3, epochs=8, batch_size=8),
          root / "m.pt", root / "tb", root / "t.json", root / "c.csv")
    return root / "m.pt"


def upscaled(cls: int, size: int) -> Image.Image:
    """A new image of class ``cls`` (unseen noise) at another size."""
    return Image.fromarray(class_image(cls, 999, 16)).resize((size, size), Image.NEAREST)


@pytest.fixture
def images(tmp_path):
    paths = {}
    # RGBA PNG, 3x the training size.
    paths["png"] = tmp_path / "a.png"
    upscaled(1, 48).convert("RGBA").save(paths["png"])
    # CMYK JPEG at 40x40.
    paths["cmyk"] = tmp_path / "b.jpg"
    upscaled(2, 40).convert("CMYK").save(paths["cmyk"], quality=95)
    # Stored rotated, with EXIF orientation 6 ("rotate 90 clockwise to display"): only a
    # reader that applies EXIF sees the horizontal bar of class 0.
    paths["exif"] = tmp_path / "c.jpg"
    stored = upscaled(0, 32).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(paths["exif"], quality=95, exif=exif)
    paths["text"] = tmp_path / "notes.jpg"
    paths["text"].write_text("this is not an image\n")
    return paths


def test_predicts_any_size_mode_and_orientation(model, images):
    got = predict(model, [images["png"], images["cmyk"], images["exif"]])
    assert all(isinstance(r, Prediction) for r in got)
    assert [r.label for r in got] == ["class1", "class2", "class0"]
    assert all(0.5 < r.probability <= 1 for r in got)


def test_exif_orientation_matters(model, images, tmp_path):
    raw = tmp_path / "raw.png"
    Image.open(images["exif"]).save(raw)  # same stored pixels, orientation tag dropped
    (r,) = predict(model, [raw])
    assert r.label != "class0" or r.probability < 0.9


def test_non_image_is_a_clear_error_not_a_crash(model, images):
    got = predict(model, [images["text"], images["png"]])
    assert isinstance(got[0], InputError) and "notes.jpg" in str(got[0]) and "not-an-image" in str(got[0])
    assert isinstance(got[1], Prediction)


def test_cli(model, images):
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1")
    r = subprocess.run([sys.executable, "-m", "pipeline", "predict", str(model), str(images["cmyk"]),
                        str(images["text"]), "--top", "2"], capture_output=True, text=True, env=env, cwd=REPO,
                       timeout=120)
    assert r.returncode == 2
    header, row = r.stdout.strip().splitlines()
    assert header.split() == ["image", "class", "probability", "next"]
    path, label, prob, other, other_prob, *flag = row.split()
    assert path.endswith("b.jpg") and label == "class2" and 0 < float(prob) <= 1 and other.startswith("class")
    assert "notes.jpg: cannot be read as an image (not-an-image" in r.stderr
    assert "Traceback" not in r.stderr
    bad = subprocess.run([sys.executable, "-m", "pipeline", "predict", str(images["text"]), str(images["png"])],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "not a pipeline checkpoint" in bad.stderr


def test_multipage_tiff_fifo_and_links_get_clear_answers(model, tmp_path):
    """A multi-page TIFF predicts from its first page (noted); a FIFO, a dangling link
    and a non-image are clear errors (a FIFO never blocks: the CLI runs under a timeout)."""
    pages = [upscaled(k, 32) for k in (2, 0, 1)]
    tif = tmp_path / "pages.tif"
    pages[0].save(tif, save_all=True, append_images=pages[1:])
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    got = predict(model, [tif])
    assert isinstance(got[0], Prediction) and got[0].label == "class2" and "first-frame-of:3" in got[0].notes
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1")
    r = subprocess.run([sys.executable, "-m", "pipeline", "predict", str(model), str(tif), str(tmp_path / "pipe.png"),
                        str(tmp_path / "gone.png")], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stdout.splitlines()[1].split()[:2] == [str(tif), "class2"]
    assert f"note: {tif}: first-frame-of:3" in r.stderr
    assert "pipe.png: cannot be read as an image (not-a-regular-file: is a fifo, not a regular file)" in r.stderr
    assert "gone.png: cannot be read as an image (dangling-link:" in r.stderr


def _predict_cli(*args):
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1")
    return subprocess.run([sys.executable, "-m", "pipeline", "predict", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)


def test_cli_folder_json_and_min_confidence(model, tmp_path):
    """A folder gives its images sorted (hidden ones and other files skipped); --json is
    one object; --min-confidence flags the rows under it, in the table and in JSON."""
    import json

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / ".cache").mkdir()
    upscaled(1, 48).save(folder / "b.png")
    upscaled(2, 40).convert("RGB").save(folder / "sub" / "a.jpg")  # any size: the checkpoint's resize
    upscaled(0, 32).save(folder / ".hidden.png")
    upscaled(0, 32).save(folder / ".cache" / "c.png")
    (folder / "notes.txt").write_text("not an image\n")
    r = _predict_cli(model, folder, "--json")
    assert r.returncode == 0, r.stderr
    assert f"note: 1 file(s) without an image extension skipped ({folder / 'notes.txt'})" in r.stderr
    got = json.loads(r.stdout)
    assert [p["path"] for p in got["predictions"]] == [str(folder / "b.png"), str(folder / "sub" / "a.jpg")]
    assert [p["label"] for p in got["predictions"]] == ["class1", "class2"] and got["errors"] == []
    assert got["min_confidence"] == 0.5 and not any(p["low_confidence"] for p in got["predictions"])
    # A black image looks like no class: the model is far less sure of it than of b.png.
    Image.new("L", (16, 16)).save(tmp_path / "black.png")
    pair = [folder / "b.png", tmp_path / "black.png"]
    probs = [p["probability"] for p in json.loads(_predict_cli(model, *pair, "--json").stdout)["predictions"]]
    t = round(sum(probs) / 2, 4)
    assert probs[1] < t < probs[0]
    r = _predict_cli(model, *pair, "--min-confidence", t)
    header, *lines = r.stdout.splitlines()
    assert header.split() == ["image", "class", "probability"] and len(lines) == 2
    assert [line.endswith(f"low confidence (< {t:g})") for line in lines] == [False, True]
    flagged = json.loads(_predict_cli(model, *pair, "--min-confidence", t, "--json").stdout)["predictions"]
    assert [p["low_confidence"] for p in flagged] == [False, True]
    # An unreadable image deeper down is reported by name; the others are still predicted.
    (folder / "sub" / "deeper").mkdir()
    (folder / "sub" / "deeper" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    r = _predict_cli(model, folder, "--json")
    got = json.loads(r.stdout)
    assert r.returncode == 2 and [p["label"] for p in got["predictions"]] == ["class1", "class2"]
    assert [e["path"] for e in got["errors"]] == [str(folder / "sub" / "deeper" / "broken.jpg")]
    assert "broken.jpg: cannot be read as an image" in r.stderr and "Traceback" not in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _predict_cli(model, empty)
    assert r.returncode == 2 and "empty: no image files in this folder" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("resize", ["letterbox", "center_crop"])
def test_an_image_of_any_size_meets_the_model_as_its_training_rows_did(tmp_path_factory, monkeypatch, resize):
    """Images of many sizes and aspects, stored as files, trained at train.image_size
    (40, 56) with a resize and pad value other than the version's: the tensor predict
    feeds the model is, byte for byte, the one the training batches hold for that file."""
    from pipeline.train import data
    from pipeline.train.data import InputSize, load_split
    from tests.test_train_any_version import make_mixed_version

    root = tmp_path_factory.mktemp(f"fit-{resize}")
    version = make_mixed_version(root, per_class=4)
    train(version, TrainParams(model="seed_cnn", epochs=1, batch_size=8, threads=1, image_size=(40, 56),
                               resize=resize, pad_value=7), root / "m.pt", root / "tb", root / "t.json",
          root / "c.csv")
    rows = load_split(version, "train")
    assert len({w / h for h, w in rows.sizes}) > 1 and all(hw != (40, 56) for hw in rows.sizes)
    seen = []
    real = data.normalize
    monkeypatch.setattr(data, "normalize", lambda x, mean, std: seen.append(x.clone()) or real(x, mean, std))
    got = predict(root / "m.pt", list(rows.files))
    assert all(isinstance(r, Prediction) for r in got) and len(seen) == len(rows)
    trained = rows.read(range(len(rows)), InputSize(40, 56, 3, (resize, 7)))
    for i, x in enumerate(seen):
        assert x.shape == (1, 3, 40, 56) and torch.equal(x[0], trained[i]), rows.files[i]
    if resize == "letterbox":  # the padding grey is the checkpoint's, not the version's 114
        assert any((x[0] == 7).all(0).any() for x in seen)
