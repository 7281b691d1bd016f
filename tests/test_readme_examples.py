"""Every command the README shows runs on the data it names.

The fenced shell blocks are read from the clone's README.md (the committed one) and
each command either runs in a copy of the reproduced clone, in README order (a command
may read what the one before it wrote), and exits 0, or is listed in NOT_RUN with the
reason.
"""

from __future__ import annotations

import pytest

from tests.readme_commands import commands

# A fragment of the command -> why it is not run here.
NOT_RUN = {
    "make repro": "installs .venv (minutes), then runs `dvc repro`: the reproduced_clone fixture is that run",
    "make test": "the test suite itself",
    "dvc exp ": "tests/test_readme_experiments.py runs the experiment lines and checks what they promise",
    "tensorboard ": "a server that runs until it is stopped",
    "photo.jpg": "the user's own images",
    "torchrun ": "several processes re-training or rewriting the pipeline's outputs for minutes on 2 cores; "
                 "tests/test_train_distributed.py and tests/test_sharded.py run torchrun on small data",
    "path/to/": "a tree of the user's own",
    "examples/trees": "the trees example: a pip download of its wheel and minutes of detector training; its stages "
                      "run on small data in tests/test_download_trees.py, test_ingest_tiles.py, test_train_tasks.py "
                      "and test_detect_evaluate_predict.py",
    "data/mine": "what the user's own tree becomes",
    "pipeline download cifar10": "downloads from the network",
    "data/cifar10": "needs the cifar10 download",
    "dvc remote ": "the user's remote (a mount, an S3 bucket and its keys); tests/test_remote.py pushes and pulls "
                   "through both kinds",
    "dvc push": "needs a remote",
    "<repo>": "a placeholder for the user's repository (tests/test_remote.py clones one and pulls)",
}


def _reason(text: str) -> str | None:
    return next((why for fragment, why in NOT_RUN.items() if fragment in text), None)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_readme_command_runs_or_says_why_not(reproduced_clone, tmp_path):
    clone = reproduced_clone.copy(tmp_path / "clone")
    listed = commands(clone.path / "README.md")
    run = [c for c in listed if _reason(c.text) is None]
    stale = [fragment for fragment in NOT_RUN if not any(fragment in c.text for c in listed)]
    assert not stale, f"NOT_RUN names commands the README no longer shows: {stale}"
    assert any("data/version" in c.argv for c in run) and any("data/canonical" in c.argv for c in run)

    for c in run:
        res = clone.run(*c.argv, check=False, timeout=300)
        assert res.returncode == 0, f"README: {c.text} -> {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
