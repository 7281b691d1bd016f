"""The committed HEAD, cloned and run through `dvc repro` once per test session.

A user's clone is the thing the README promises about, so the checks of those promises
(the fresh-clone test, the README's commands, the experiment flow) share one clone
rather than each paying for a pipeline run. It is made from the *committed* HEAD, so a
dirty work tree changes nothing, and run the way a user runs it: Python writes its
bytecode caches (our machines set PYTHONDONTWRITEBYTECODE, users' do not).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Clone:
    path: Path
    env: dict[str, str]
    repro: subprocess.CompletedProcess | None  # the first `dvc repro`, if the fixture ran it

    def run(self, *cmd: str, timeout: float = 600, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        """A command in the clone, with the clone's environment (plus ``env``)."""
        res = subprocess.run(list(cmd), cwd=self.path, env={**self.env, **env}, capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert res.returncode == 0, f"{' '.join(cmd)} -> {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        return res

    def git(self, *args: str) -> str:
        return self.run("git", *args).stdout

    def copy(self, dest: Path) -> Clone:
        """This clone copied to ``dest`` (outputs, DVC cache and git history with it), for a
        test that writes; ``.dvc/tmp`` stays behind: its state and locks are the original's."""
        def skip(folder: str, names: list[str]) -> set[str]:
            return {"tmp"} if Path(folder) == self.path / ".dvc" else set()

        shutil.copytree(self.path, dest, symlinks=True, ignore=skip)
        return Clone(dest, clone_env(dest), self.repro)


def clone_env(clone: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", DVC_NO_ANALYTICS="1",
               NO_ALBUMENTATIONS_UPDATE="1", PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(clone))
    return env


def make_clone(root: Path) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout")
    clone = root / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, capture_output=True)
    return clone


@pytest.fixture(scope="session")
def reproduced_clone(tmp_path_factory) -> Clone:
    """A clone of the committed HEAD after one `dvc repro` (asserted to succeed).

    Tests that change the clone (experiments, commands that write) must leave its git
    work tree and its outputs as they found them, or work in a copy.
    """
    path = make_clone(tmp_path_factory.mktemp("fresh"))
    env = clone_env(path)
    res = subprocess.run([str(BIN / "dvc"), "repro", "--quiet"], cwd=path, env=env, capture_output=True,
                         text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return Clone(path, env, res)
