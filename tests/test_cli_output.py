"""What the commands print: one readable line for people, one JSON object with --json,
boolean options that take no value, and a notice when a command replaces an output
that the repository's dvc.lock tracks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import make_imagefolder

REPR = ("{'", "['", "<bool>", "':", "Path(")  # a Python repr leaking into text meant for people

PARAMS = """
ingest: {workers: 1}
split: {seed: 1, ratios: {train: 0.6, val: 0.2, test: 0.2}}
augment:
  copies: 1
  pipeline:
    - {name: rotate, p: 0.8, degrees: 10}
    - {name: crop, p: 0.8, padding: 2}
train: {model: seed_cnn, epochs: 1, batch_size: 16}
evaluate: {batch_size: 64}
"""


def cli(args: list, cwd: Path, env: dict | None = None):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, [str(a) for a in args], env=env)
    finally:
        os.chdir(old)


def commands() -> dict:
    return typer.main.get_command(app).commands


@pytest.mark.parametrize("name", [None, *sorted(commands())])
def test_help_shows_no_bool_metavar(name):
    res = CliRunner().invoke(app, [name, "--help"] if name else ["--help"])
    assert res.exit_code == 0, res.output
    assert "<bool>" not in res.output and "BOOLEAN" not in res.output


def test_every_boolean_option_is_a_flag_and_summaries_offer_json():
    for name, command in commands().items():
        for param in command.params:
            if param.type_descriptor.annotation is bool:
                assert param.is_flag, (name, param.name)  # --json, never --json <bool>
        assert "--json" in [o for p in command.params for o in p.opts], name


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    make_imagefolder(root / "src", classes=3, per_class=6, size=16)
    (root / "params.yaml").write_text(PARAMS)
    return root


STEPS = [
    ("ingest", "src", "--out", "canonical"),
    ("split", "canonical", "--out", "splits"),
    ("augment", "canonical", "--splits", "splits", "--out", "version"),
    ("augment", "--preview", "--source", "canonical", "--n", "2", "--logdir", "tb_preview"),
    ("export", "version", "--format", "imagefolder", "--out", "exported"),
    ("train", "version", "--checkpoint", "m.pt", "--logdir", "tb", "--metrics", "t.json", "--curve", "c.csv"),
    ("evaluate", "version", "--checkpoint", "m.pt", "--metrics", "e.json", "--confusion", "cf.csv",
     "--logdir", "tb_eval"),
]


@pytest.mark.slow
def test_summaries_are_one_readable_line_and_json_is_one_object(workspace):
    for step in STEPS:
        res = cli(step, workspace)
        assert res.exit_code == 0, (step, res.output)
        text = res.stdout
        assert not any(r in text for r in REPR), (step, text)
        summary = text.strip().splitlines()[-1 if step[1] != "--preview" else -2]
        name = "preview" if step[1] == "--preview" else step[0]
        assert summary.startswith(f"{name}: "), (step, text)
        res = cli([*step, "--json"], workspace)
        assert res.exit_code == 0, (step, res.output)
        facts = json.loads(res.stdout)  # stdout is the one object: epochs and the like go to stderr
        assert isinstance(facts, dict) and facts, step
    ingest = json.loads(cli([*STEPS[0], "--json"], workspace).stdout)
    assert ingest["samples"] == 18 and ingest["classes"] == 3 and ingest["splits"] == {"unassigned": 18}
    lines = cli(STEPS[4], workspace).stdout
    assert "export: 29 images in 3 classes → exported (imagefolder; train 22 · val 3 · test 4)" in lines
    stats = cli(["stats", "canonical", "--splits", "splits"], workspace).stdout
    assert not any(r in stats for r in REPR), stats
    assert json.loads(cli(["stats", "canonical", "--json"], workspace).stdout)["samples"] == 18


def test_lines_from_facts_hold_no_repr():
    from pipeline.reports import summary

    line = summary.export_line({"out": "y", "classes": 2, "format": "yolo", "task": "segment", "images": 1300,
                                "splits": {"val": 300, "train": 1000}, "boxes_as_rectangles": 3,
                                "renamed_classes": {"a/b": "a_b"}, "some_new_count": [1, 2]})
    assert line == ("export: 1,300 images in 2 classes → y (yolo segment; train 1,000 · val 300; "
                    "3 box-only objects written as rectangles; class folders renamed: a/b → a_b; "
                    "some new count 1, 2)")
    assert not any(r in line for r in REPR)


LOCK = """schema: '2.0'
stages:
  ingest:
    cmd: python -m stages.ingest --src raw --out {out}
    outs:
    - path: {out}
      hash: md5
      md5: 0123456789abcdef0123456789abcdef.dir
"""


def test_replacing_a_dvc_tracked_output_says_so_and_how_to_restore_it(tmp_path):
    make_imagefolder(tmp_path / "src", classes=2, per_class=3)
    (tmp_path / "dvc.lock").write_text(LOCK.format(out="data/canonical"))
    res = cli(["ingest", "src", "--out", "data/canonical"], tmp_path)
    assert res.exit_code == 0, res.output
    note = [line for line in res.stderr.splitlines() if line.startswith("note:")]
    assert note == ["note: replaced the pipeline's tracked output data/canonical (stage ingest, dvc.lock); "
                    "`dvc checkout --force data/canonical` restores it"]
    res = cli(["ingest", "src", "--out", "data/canonical", "--json"], tmp_path)  # stdout stays one object
    assert json.loads(res.stdout)["samples"] == 6 and "dvc checkout --force data/canonical" in res.stderr
    (tmp_path / "data" / "sub").mkdir()  # from a folder inside the repository: the paths as typed there
    res = cli(["ingest", "../../src", "--out", "../canonical"], tmp_path / "data" / "sub")
    assert "`dvc checkout --force ../canonical` restores it" in res.stderr
    assert "tracked output" not in cli(["ingest", "src", "--out", "elsewhere"], tmp_path).stderr
    # Under `dvc repro` (DVC sets DVC_STAGE) the stage writes its own output: nothing to say.
    res = cli(["ingest", "src", "--out", "data/canonical"], tmp_path, env={"DVC_STAGE": "ingest"})
    assert res.exit_code == 0 and "tracked output" not in res.stderr


def test_tracked_output_is_found_from_the_lock_above_the_output(tmp_path, monkeypatch):
    from pipeline.core.dvclock import tracked_output

    monkeypatch.delenv("DVC_STAGE", raising=False)
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "dvc.lock").write_text(LOCK.format(out="data/canonical"))
    monkeypatch.chdir(tmp_path)  # outside the repository
    t = tracked_output(repo / "data" / "canonical")
    assert (t.stage, t.path) == ("ingest", "data/canonical")
    assert t.restore == f"cd {repo} && dvc checkout --force data/canonical"
    assert tracked_output(repo / "data" / "canonical" / "inner").stage == "ingest"  # inside it
    assert tracked_output(repo / "data" / "other") is None
    (repo / "dvc.lock").write_text("stages: [not, a, lock\n")  # unreadable: no notice, no error
    assert tracked_output(repo / "data" / "canonical") is None
