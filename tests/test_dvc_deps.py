"""Each stage of both DVC pipelines (the root one and examples/trees) lists among its deps
every source file its command can import, so that a change to any of them re-runs the
stage: a stage whose code changed but whose deps did not would keep an output the code
no longer makes, and ``dvc status`` would call it up to date.

The imports are read from the source (``tests.test_import_graph``'s walk: lazy imports
inside functions too), from ``stages/<name>.py`` through every ``pipeline`` module it
reaches; importing a module also runs its packages' ``__init__.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.test_import_graph import _graph, _reach

PIPELINES = {"root": REPO / "dvc.yaml", "trees": REPO / "examples" / "trees" / "dvc.yaml"}


def _module_file(module: str) -> Path:
    path = REPO.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _with_packages(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _imported_by(path: Path) -> set[str]:
    """The ``pipeline`` and ``stages`` modules one file names in its imports."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            while n and not _module_file(n).is_file():
                n = n.rpartition(".")[0]
            if n.split(".")[0] in ("pipeline", "stages"):
                out.add(n)
    return out


def stage_sources(stage: str) -> set[str]:
    """Repository-relative source files that ``python -m stages.<stage>`` can import."""
    graph = _graph()
    todo, seen = [f"stages.{stage}"], set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        if m.startswith("stages"):
            todo += _imported_by(_module_file(m))
        else:
            todo += _reach(graph, m)
    modules = set().union(*(_with_packages(m) for m in seen))
    return {_module_file(m).relative_to(REPO).as_posix() for m in modules}


def _stages(dvc_yaml: Path):
    doc = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))
    for name, stage in doc["stages"].items():
        cmd = " ".join(stage["cmd"]) if isinstance(stage["cmd"], list) else stage["cmd"]
        module = next((w.removeprefix("stages.") for w in cmd.split() if w.startswith("stages.")), None)
        deps = [d.replace("${repo}/", "").rstrip("/") for d in stage.get("deps", [])]
        yield name, module, deps


def _covered(source: str, deps: list[str]) -> bool:
    return any(source == d or source.startswith(d + "/") for d in deps)


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_every_stage_depends_on_all_the_code_it_runs(pipeline):
    missing = {}
    for name, module, deps in _stages(PIPELINES[pipeline]):
        assert module is not None, f"{pipeline}: stage {name} runs no stages.<module>"
        lost = sorted(s for s in stage_sources(module) if not _covered(s, deps))
        if lost:
            missing[name] = lost
    assert not missing, f"{PIPELINES[pipeline]}: deps missing the code their stage imports: {missing}"


def test_the_walk_finds_what_a_stage_reaches_lazily():
    """It can fail: train reaches the detection data path (imported inside a function) and
    the record every stage shares; a deps list without them is caught."""
    sources = stage_sources("train")
    assert {"pipeline/torchdata.py", "pipeline/record.py", "stages/runner.py", "pipeline/__init__.py"} <= sources
    assert not _covered("pipeline/torchdata.py", ["pipeline/train", "stages/train.py"])
