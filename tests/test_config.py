"""params.yaml validation: errors name the file, the key and the allowed range."""

from pathlib import Path

import pytest

from pipeline.config import SECTIONS, load_section, parse_section
from pipeline.errors import ConfigError

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
