"""Every path the CLI takes, given a FIFO: the command ends at once, no traceback.

The commands and their path parameters are read from the typer app itself, so a
new command or option is walked without being listed here. A path the tool
*reads* (a file or a directory) that is a FIFO is refused with exit 2 and one line
naming it: a FIFO with no writer would block ``open`` forever. A path the tool
*writes* that is already a FIFO must not block either: it is refused, or replaced
the way every output is (a rename), never opened. ``KINDS`` lists every parameter
that is not a plain file the tool reads, with the reason; a stale entry fails.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import typer

from pipeline.cli import app
from tests.conftest import class_image, make_version

TIMEOUT = 120  # seconds: a hang is caught, and a loaded machine still passes (the real figure: ~1-5 s)

# (command, parameter) -> (kind, why). Every other path parameter is a file the tool reads.
KINDS: dict[tuple[str, str], tuple[str, str]] = {
    ("download", "out"): ("written", "the dataset directory it writes"),
    ("download", "cache"): ("written", "the download cache, a directory it reads and fills"),
    ("download", "from_"): ("read", "an archive, or a directory of the upstream files"),
    ("ingest", "src"): ("read", "the source tree, a directory"),
    ("ingest", "out"): ("written", "the canonical dataset directory"),
    ("split", "dataset"): ("read", "a dataset directory"),
    ("split", "out"): ("written", "the split directory"),
    ("augment", "dataset"): ("read", "a dataset directory"),
    ("augment", "splits"): ("read", "a split directory"),
    ("augment", "source"): ("read", "the dataset directory --preview shows"),
    ("augment", "out"): ("written", "the version directory"),
    ("augment", "logdir"): ("written", "the preview's TensorBoard directory"),
    ("trace", "version"): ("read", "a version directory"),
    ("trace", "dataset"): ("read", "a dataset directory"),
    ("trace", "save"): ("written", "the re-rendered PNG"),
    ("train", "version"): ("read", "a version directory"),
    ("train", "checkpoint"): ("written", "the checkpoint (read back only to resume one of its own)"),
    ("train", "logdir"): ("written", "a TensorBoard directory"),
    ("train", "metrics"): ("written", "metrics JSON"),
    ("train", "curve"): ("written", "per-epoch CSV"),
    ("evaluate", "version"): ("read", "a version directory"),
    ("evaluate", "metrics"): ("written", "metrics JSON"),
    ("evaluate", "confusion"): ("written", "confusion CSV"),
    ("evaluate", "logdir"): ("written", "a TensorBoard directory"),
    ("evaluate", "report"): ("written", "per-class report JSON"),
    ("evaluate", "hparams"): ("written", "the HParams TensorBoard directory"),
    ("evaluate", "pr"): ("written", "a detector's precision-recall CSV (refused for a classifier)"),
    ("predict", "out"): ("written", "a detector's results directory (refused for a classifier)"),
    ("stats", "dataset"): ("read", "a dataset or version directory"),
    ("stats", "splits"): ("read", "a split directory"),
    ("stats", "png"): ("written", "the objects picture"),
    ("stats", "csv"): ("written", "one row per object"),
    ("export", "dataset"): ("read", "a dataset or version directory"),
    ("export", "splits"): ("read", "a split directory"),
    ("export", "out"): ("written", "the export directory"),
}

PARAMS_YAML = """\
ingest: {workers: 1}
split: {ratios: {train: 0.6, val: 0.2, test: 0.2}}
augment: {copies: 1, workers: 1}
train: {model: seed_cnn, epochs: 1, batch_size: 8}
evaluate: {batch_size: 8}
"""


def path_params() -> list[tuple[str, str]]:
    """``(command, parameter)`` for every parameter annotated as a path (or paths)."""
    out = []
    for info in app.registered_commands:
        hints = typing.get_type_hints(info.callback)
        name = info.name or info.callback.__name__
        for param, hint in hints.items():
            if param != "return" and "Path" in str(hint):
                out.append((name, param))
    return sorted(out)


def test_every_command_is_walked_and_the_table_is_current():
    click_app = typer.main.get_command(app)
    walked = {c for c, _ in path_params()}
    assert walked == set(click_app.commands), "a command with no path parameter: extend the walk"
    assert set(KINDS) <= set(path_params()), f"stale entries: {set(KINDS) - set(path_params())}"
    assert {k for k, _ in KINDS.values()} <= {"read", "written"}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    """Valid inputs for every command: a dataset, splits, a version, a checkpoint, images."""
    from PIL import Image

    from pipeline.config import SplitParams, TrainParams
    from pipeline.datasets import load_dataset
    from pipeline.split import write_splits
    from pipeline.train.loop import train
    from tests.download_fixtures import hymenoptera_archive

    root = tmp_path_factory.mktemp("world")
    make_version(root, per_class=6, ratios={"train": 0.6, "val": 0.2, "test": 0.2})
    write_splits(load_dataset(root / "canonical"), SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}),
                 root / "splits")
    train(root / "v", TrainParams(model="seed_cnn", epochs=1, batch_size=8), root / "m.pt", root / "tb",
          root / "t.json", root / "c.csv")
    (root / "params.yaml").write_text(PARAMS_YAML)
    (root / "hymenoptera_data.zip").write_bytes(hymenoptera_archive())
    Image.fromarray(class_image(1, 5)).save(root / "digit.png")
    first = (root / "v" / "manifest.jsonl").read_text().splitlines()[0]
    import json

    return {"root": str(root), "ds": str(root / "canonical"), "splits": str(root / "splits"), "v": str(root / "v"),
            "ckpt": str(root / "m.pt"), "img": str(root / "digit.png"), "params": str(root / "params.yaml"),
            "src": str(root / "src"), "zip": str(root / "hymenoptera_data.zip"), "id": json.loads(first)["id"]}


# A valid command line per command (the preview for augment's preview-only options):
# positional values, then options. ``{w}`` is a fresh directory for what it writes.
BASE = {
    "download": (["hymenoptera"], {"--out": "{w}/raw", "--cache": "{w}/cache", "--from": "{zip}",
                                   "--params": "{params}"}),
    "ingest": (["{src}"], {"--out": "{w}/ds", "--params": "{params}"}),
    "split": (["{ds}"], {"--out": "{w}/splits", "--params": "{params}"}),
    "augment": (["{ds}"], {"--splits": "{splits}", "--out": "{w}/v", "--params": "{params}"}),
    "trace": (["{v}", "{id}"], {"--dataset": "{ds}", "--save": "{w}/t.png"}),
    "train": (["{v}"], {"--checkpoint": "{w}/m.pt", "--logdir": "{w}/tb", "--metrics": "{w}/t.json",
                        "--curve": "{w}/c.csv", "--params": "{params}"}),
    "evaluate": (["{v}"], {"--checkpoint": "{ckpt}", "--metrics": "{w}/e.json", "--confusion": "{w}/c.csv",
                           "--logdir": "{w}/tb", "--report": "{w}/r.json", "--params": "{params}"}),
    "stats": (["{ds}"], {"--splits": "{splits}", "--png": "{w}/o.png", "--csv": "{w}/o.csv"}),
    "export": (["{ds}"], {"--format": "imagefolder", "--splits": "{splits}", "--out": "{w}/exp"}),
    "predict": (["{ckpt}", "{img}"], {}),
}
PREVIEW = ([], {"--preview": None, "--source": "{ds}", "--logdir": "{w}/runs", "--n": "2", "--params": "{params}"})


def command_line(command: str, param: str, fifo: Path, values: dict[str, str]) -> list[str]:
    click_cmd = typer.main.get_command(app).commands[command]
    positional, options = PREVIEW if (command, param) in {("augment", "source"), ("augment", "logdir")} \
        else BASE[command]
    positional, options = list(positional), dict(options)
    target = next(p for p in click_cmd.params if p.name == param)
    if target.opts[0].startswith("--"):
        options[target.opts[0]] = str(fifo)
    else:
        args = [p for p in click_cmd.params if not p.opts[0].startswith("--")]
        i = args.index(target)
        positional[i:i + 1] = [str(fifo)]
    line = [command, *(v.format(**values) for v in positional)]
    for opt, v in options.items():
        line += [opt] if v is None else [opt, v.format(**values)]
    return line


@pytest.mark.slow
@pytest.mark.parametrize("command, param", path_params())
def test_a_fifo_never_blocks(world, tmp_path, command, param):
    kind, _ = KINDS.get((command, param), ("read", "a file the tool reads"))
    w = tmp_path / "w"
    w.mkdir()
    fifo = tmp_path / f"fifo-{param}"
    os.mkfifo(fifo)
    line = command_line(command, param, fifo, {**world, "w": str(w)})
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PIPELINE_CACHE=str(tmp_path / "cache"))
    try:
        r = subprocess.run([sys.executable, "-m", "pipeline", *line], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`pipeline {' '.join(line)}` blocked on the FIFO given as {param}")
    assert "Traceback" not in r.stderr, r.stderr
    errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    if kind == "read":
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert len(errors) == 1 and str(fifo) in errors[0], r.stderr
    else:  # refused, naming it, or replaced by what the command writes
        assert r.returncode in (0, 2), (r.returncode, r.stderr)
        if r.returncode == 2:
            assert len(errors) == 1 and str(fifo) in errors[0], r.stderr
        else:
            assert not stat.S_ISFIFO(os.lstat(fifo).st_mode), "the output was never written"
