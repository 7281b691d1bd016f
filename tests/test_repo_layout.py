"""The repository's contracts: dvc.yaml, params.yaml and the stage modules agree."""

import re

import yaml

from pipeline.config import SECTIONS
from tests.conftest import REPO


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML loader that refuses duplicate keys, as DVC does (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        dup = {k for k in keys if keys.count(k) > 1}
        assert not dup, f"duplicate keys {dup} at line {node.start_mark.line + 1}"
        return super().construct_mapping(node, deep)


def dvc_yaml():
    return yaml.load((REPO / "dvc.yaml").read_text(), Loader=_UniqueKeyLoader)


def test_params_and_dvc_yaml_have_no_duplicate_keys():
    dvc_yaml()
    yaml.load((REPO / "params.yaml").read_text(), Loader=_UniqueKeyLoader)


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
