"""The README's experiment lines do what it says: each experiment is the baseline plus its
own ``-S``, the workspace (``params.yaml``, outputs, ``dvc.lock``) is left as it was, and
the ``--only-changed`` table fits 120 columns with three experiments.

The commands are the README's own, read from the clone's README.md; they train for one
to two minutes on 2 cores. The third experiment has the shape of the README's first with
a cheap override (only ``evaluate`` re-runs): the table's width is promised for three.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml

from tests.readme_commands import Command, commands

WIDTH = 120


def _workspace(clone) -> dict[str, str]:
    """What an experiment must leave alone: the git status and the bytes of the files it would touch."""
    files = ("params.yaml", "dvc.lock", "models/model.pt", "metrics/eval.json", "plots/train_curve.csv")
    state = {f: hashlib.sha256((clone.path / f).read_bytes()).hexdigest() for f in files}
    state["git status"] = clone.git("status", "--porcelain", "--untracked-files=all")
    return state


def _changed_params(clone, name: str) -> dict[str, object]:
    res = clone.run("dvc", "params", "diff", "HEAD", name, "--json")
    diff = json.loads(res.stdout)
    return {key: change["new"] for per_file in diff.values() for key, change in per_file.items()}


def _width(table: str) -> int:
    return max(len(line.rstrip()) for line in table.splitlines())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_readme_experiments_are_the_baseline_plus_their_own_set(reproduced_clone, tmp_path):
    clone = reproduced_clone.copy(tmp_path / "clone")
    listed = [c for c in commands(clone.path / "README.md") if c.argv[:2] == ("dvc", "exp")]
    runs = [c for c in listed if c.argv[2] == "run"]
    (show,) = [c for c in listed if c.argv[2] == "show"]
    assert len(runs) >= 2 and all(len(c.sets()) == 1 for c in runs), [c.text for c in runs]
    first = runs[0].argv
    at = first.index(runs[0].sets()[0])
    runs.append(Command("(third, the first's shape)", (*first[:at], "evaluate.worst=8", *first[at + 1:])))

    before = _workspace(clone)
    names = {}
    for c in runs:
        res = clone.run(*c.argv, timeout=400)
        (name,) = re.findall(r"Ran experiment\(s\): (\S+)", res.stdout + res.stderr)
        names[name] = c
        assert _workspace(clone) == before, f"{c.text} changed the workspace"

    for name, c in names.items():
        key, value = c.sets()[0].split("=", 1)
        assert _changed_params(clone, name) == {key: yaml.safe_load(value)}, f"{name} ({c.text})"

    wide = clone.run(*show.argv, COLUMNS="1000").stdout
    assert _width(wide) <= WIDTH, wide
    header = wide.splitlines()[1]
    assert "accuracy" in header and all(c.sets()[0].split("=")[0] in header for c in names.values()), wide
    # At 120 columns the same table, nothing hidden to make it fit.
    at_120 = clone.run(*show.argv, COLUMNS=str(WIDTH)).stdout
    assert [line.rstrip() for line in at_120.splitlines()] == [line.rstrip() for line in wide.splitlines()]
    clone.run("dvc", "metrics", "diff", "HEAD", next(iter(names)))  # the README's comparison
