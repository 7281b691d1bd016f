"""A fresh clone reproduces the committed pipeline exactly: `git status` stays clean.

The version's bytes are a function of its inputs only (no commit, no wall time, no
absolute path), and training writes no wall time into its outputs, so `dvc repro`
in a new clone rewrites `dvc.lock`, the metrics and the plots byte for byte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _git(*args, cwd=REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fresh_clone_repro_leaves_git_status_clean(tmp_path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout")
    if _git("status", "--porcelain", "--untracked-files=no").strip():
        pytest.skip("uncommitted changes: the check is about the committed state (CI runs it on a clean clone)")
    clone = tmp_path / "clone"
    _git("clone", "--quiet", str(REPO), str(clone))
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
           "PIPELINE_NO_PROGRESS": "1", "PYTHONPATH": str(clone)}
    res = subprocess.run([str(bindir / "dvc"), "repro", "--quiet"], cwd=clone, env=env, capture_output=True,
                         text=True, timeout=850)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    status = _git("status", "--porcelain", cwd=clone)
    assert status == "", f"a fresh clone's `dvc repro` changed committed files:\n{status}\n" + _git(
        "diff", "--stat", cwd=clone)
