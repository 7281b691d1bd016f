"""The repository's contracts: dvc.yaml, params.yaml and the stage modules agree."""

import re

import yaml

from pipeline.config import SECTIONS
from tests.conftest import REPO


def dvc_yaml():
    return yaml.safe_load((REPO / "dvc.yaml").read_text())


def test_stages_in_order_and_each_reads_exactly_its_section():
    d = dvc_yaml()
    assert list(d["stages"]) == ["download", "ingest", "split", "augment", "train", "evaluate"]
    for name, stage in d["stages"].items():
        assert stage["params"] == [name]
        assert name in SECTIONS
        assert stage["cmd"].startswith(f"python -m stages.{name} ")
        assert (REPO / "stages" / f"{name}.py").is_file()


def test_paths_live_only_in_dvc_yaml_vars():
    d = dvc_yaml()
    paths = set(d["vars"][0].values())
    for name, stage in d["stages"].items():
        # Every path in a command is a ${var}: no literal path is written twice.
        literal = re.findall(r"--\w+ ([^\s$][^\s]*)", stage["cmd"])
        assert literal == [], (name, literal)
    code = "\n".join(p.read_text() for p in (REPO / "stages").glob("*.py"))
    code += "\n".join(p.read_text() for p in (REPO / "pipeline").rglob("*.py"))
    for p in paths:
        assert p not in code, f"{p} is written in code as well as in dvc.yaml"


def test_params_file_has_only_known_sections():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(params) <= set(SECTIONS)
