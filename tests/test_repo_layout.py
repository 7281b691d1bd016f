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


def test_version_lineage_hashes_exactly_the_augment_stage_code():
    from pipeline.version.card import RENDER_CODE

    deps = dvc_yaml()["stages"]["augment"]["deps"]
    code = {d for d in deps if d.startswith("pipeline")}
    assert code == set(RENDER_CODE), "card.RENDER_CODE and the augment stage's code deps must agree"


def test_lineage_changes_with_rendering_code_only(tmp_path, monkeypatch):
    import shutil

    from pipeline.version import card

    copy = tmp_path / "src"
    for entry in card.RENDER_CODE + ("pipeline/train",):
        src = REPO / entry
        if src.is_dir():
            shutil.copytree(src, copy / entry, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (copy / entry).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, copy / entry)
    fake = copy / "pipeline" / "version" / "card.py"
    monkeypatch.setattr(card, "__file__", str(fake))
    base = card.code_sha256()
    assert base == card.code_sha256()  # a function of the files alone
    (copy / "pipeline" / "train" / "loop.py").write_text("# not rendering code\n")
    assert card.code_sha256() == base
    seeding = copy / "pipeline" / "core" / "seeding.py"
    seeding.write_text(seeding.read_text() + "\n# x\n")
    assert card.code_sha256() != base


def test_the_trees_example_runs_the_root_stages_with_the_same_code_deps():
    """examples/trees: its own DVC project whose stages are the root's, on PYTHONPATH from the
    repository, reading the same code (so a code change re-runs both pipelines alike)."""
    example = REPO / "examples" / "trees"
    d = yaml.load((example / "dvc.yaml").read_text(), Loader=_UniqueKeyLoader)
    root = dvc_yaml()["stages"]
    assert (example / ".dvc" / "config").is_file()  # a project of its own: the root's `dvc status` skips it
    assert list(d["stages"]) == list(root)
    repo = d["vars"][0]["repo"]
    assert (example / repo / "dvc.yaml").resolve() == (REPO / "dvc.yaml").resolve()
    params = yaml.load((example / "params.yaml").read_text(), Loader=_UniqueKeyLoader)
    assert set(params) <= set(SECTIONS)
    for name, stage in d["stages"].items():
        assert stage["params"] == [name]
        assert stage["cmd"].startswith(f"PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=${{repo}} python -m stages.{name} ")
        code = {p.removeprefix("${repo}/") for p in stage["deps"] if p.startswith("${repo}/")}
        assert code == {p for p in root[name]["deps"] if not p.startswith("${")}, name
        literal = re.findall(r"--\w+ ([^\s$][^\s]*)", stage["cmd"])
        assert literal == [], (name, literal)
    for name in ("download", "ingest", "split", "augment"):  # the data sections validate as they are
        from pipeline.config import parse_section

        parse_section(name, params.get(name), source="examples/trees/params.yaml")
