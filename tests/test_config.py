"""params.yaml validation: errors name the file, the key and the allowed range."""

from pathlib import Path

import pytest

from pipeline.config import SECTIONS, load_section, parse_section
from pipeline.core.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_repo_params_file_is_valid():
    for name in SECTIONS:
        load_section(name, REPO / "params.yaml")


@pytest.mark.parametrize("section,data,expected", [
    ("train", {"epochz": 3}, ["train.epochz", "unknown key", "epochs"]),
    ("train", {"epochs": 0}, ["train.epochs", "greater than or equal to 1", "got 0"]),
    ("train", {"lr": -1}, ["train.lr", "got -1"]),
    ("train", {"model": "vgg"}, ["train.model", "seed_cnn"]),
    ("split", {"ratios": {"train": 0.5, "test": 0.2}}, ["split.ratios", "sum to 1"]),
    ("split", {"ratios": {"train": 0.5, "tset": 0.5}}, ["split.ratios", "tset"]),
    ("split", {"ratios": {"train": 1.0}}, ["split.ratios", "at least one of val, test"]),
    ("ingest", {"min_size": 0}, ["ingest.min_size"]),
    ("augment", {"pipeline": [{"name": "rotat"}]}, ["augment.pipeline[0]", "unknown op 'rotat'", "rotate"]),
    ("augment", {"pipeline": [{"name": "rotate", "degrees": 400}]}, ["augment.pipeline[0]", "degrees", "400"]),
    ("augment", {"pipeline": [{"name": "crop", "pading": 2}]}, ["pading", "unknown key", "padding"]),
    ("augment", {"pipeline": [{"name": "hflip", "p": 1.5}]}, ["augment.pipeline[0]", "p", "1.5"]),
])
def test_bad_values_name_the_key(section, data, expected):
    with pytest.raises(ConfigError) as err:
        parse_section(section, data, source="my-params.yaml")
    for text in expected:
        assert text in str(err.value)


def test_unknown_section_and_missing_file(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("trian:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match="unknown section.*trian"):
        load_section("train", p)
    with pytest.raises(ConfigError, match="not found"):
        load_section("train", tmp_path / "nope.yaml")
    p.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_section("train", p)


def test_models_are_frozen():
    p = parse_section("train", {})
    with pytest.raises(Exception):
        p.epochs = 3  # type: ignore[misc]


BOMB = ("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
        + "train: {epochs: *i}\n")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("content, reason", [
    (BOMB.encode(), "yaml-too-large"),
    (("x: &x [1]\ntrain: {online_augment: [" + "*x, " * 300 + "*x]}\n").encode(), "yaml-alias-bomb"),
    ("train: {model: café}\n".encode("latin-1"), "not-utf8"),
    (b"train: {epochs: 3}\n" + b"#" * (2 << 20), "file-too-large"),
])
def test_hostile_params_files_are_refused_with_a_short_message(tmp_path, content, reason):
    p = tmp_path / "params.yaml"
    p.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_section("train", p)
    assert reason in str(err.value) and str(p) in str(err.value) and len(str(err.value)) < 800


@pytest.mark.timeout(60)
def test_params_fifo_and_dangling_link_do_not_block(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(ConfigError, match="not-a-regular-file"):
        load_section("train", tmp_path / "fifo.yaml")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "gone.yaml")
    with pytest.raises(ConfigError, match="dangling-link"):
        load_section("train", tmp_path / "link.yaml")


@pytest.mark.timeout(120)
def test_cli_refuses_an_alias_bomb_params_file_quickly_and_briefly(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "params.yaml").write_text(BOMB.replace("train:", "ingest:").replace("{epochs: *i}", "{classes: *i}"))
    assert len(BOMB) < 1000
    env = dict(os.environ, PYTHONPATH=str(REPO), PIPELINE_NO_PROGRESS="1")
    r = subprocess.run([sys.executable, "-m", "pipeline", "ingest", "src", "--out", "ds"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=100)
    assert r.returncode == 2 and "yaml-too-large" in r.stderr and len(r.stderr) < 1000
    assert "Traceback" not in r.stderr and not (tmp_path / "ds").exists()


@pytest.mark.parametrize("section, data, expected", [
    ("split", {"ratios": {"train": float("nan"), "test": 1}}, "ratios.train is NaN or infinity"),
    ("split", {"ratios": {"train": 1.0, "test": float("inf")}}, "ratios.test is NaN or infinity"),
    ("augment", {"min_area": float("inf")}, "min_area"),
    ("augment", {"pipeline": [{"name": "rotate", "degrees": float("nan")}]}, "pipeline[0].degrees is NaN"),
    ("train", {"lr": float("nan")}, "lr"),
    ("train", {"online_augment": [{"name": "rotate", "degrees": [1, float("-inf")]}]}, "degrees[1]"),
    ("augment", {"image_size": [0, 0]}, "image_size.0"),
    ("augment", {"image_size": [-5, 10]}, "image_size.0"),
    ("augment", {"image_size": [100000, 100000]}, "less than or equal to 8192"),
    ("ingest", {"max_annotation_bytes": 0}, "ingest.max_annotation_bytes"),
    ("ingest", {"classes": ["cat", "dog", "cat"]}, "repeated: 'cat'"),
    ("ingest", {"classes": ["cat", " "]}, "position 1"),
    ("ingest", {"classes": ["cat", None]}, "ingest.classes.1"),
])
def test_non_finite_and_out_of_range_params_are_refused(section, data, expected):
    with pytest.raises(ConfigError) as err:
        parse_section(section, data)
    assert expected in str(err.value)


def test_long_values_are_echoed_short():
    with pytest.raises(ConfigError) as err:
        parse_section("train", {"model": "x" * 100_000})
    assert len(str(err.value)) < 600 and "100002 chars" in str(err.value)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["fifo", "dangling"])
def test_a_params_yaml_that_is_not_a_file_is_refused_not_ignored(tmp_path, monkeypatch, kind):
    """Without --params the CLI reads ./params.yaml; one that is a FIFO or a dangling link
    must stop the command (exit 2), not silently give the built-in defaults."""
    import os

    from typer.testing import CliRunner

    from pipeline.cli import app

    monkeypatch.chdir(tmp_path)
    if kind == "fifo":
        os.mkfifo("params.yaml")
    else:
        os.symlink("nowhere.yaml", "params.yaml")
    res = CliRunner().invoke(app, ["split", str(tmp_path), "--out", str(tmp_path / "sp")])
    assert res.exit_code == 2 and "params.yaml" in res.output
    assert ("not-a-regular-file" in res.output or "fifo" in res.output) if kind == "fifo" else "dangling" in res.output


@pytest.mark.parametrize("ratios,scored,refused", [
    ({"train": 0.9, "val": 0.1}, None, True),  # evaluate scores test by default: none would exist
    ({"train": 0.9, "val": 0.1}, "val", False),  # the given val folder as the held-out set
    ({"train": 0.9, "test": 0.1}, "val", True),
    ({"train": 0.8, "val": 0.1, "test": 0.1}, "val", False),
])
def test_evaluate_split_without_a_share_is_refused_before_any_stage(tmp_path, ratios, scored, refused):
    import yaml

    params = {"split": {"ratios": ratios}, **({"evaluate": {"split": scored}} if scored else {})}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    if not refused:
        assert load_section("download", path) is not None
        return
    with pytest.raises(ConfigError) as err:
        load_section("download", path)  # the first stage stops, not evaluate after training
    assert "evaluate.split" in str(err.value) and "split.ratios" in str(err.value)
