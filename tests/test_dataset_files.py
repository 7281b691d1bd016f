"""Damaged dataset files: one line naming the file (and the line), exit 2, no traceback.

Every command opens datasets, versions and split assignments through the same
readers (``record.read_jsonl``, ``record.read_json`` and what is built on them), so
each kind of file is damaged once here and read by ``stats``; a damaged manifest is
also read by the other commands that take a dataset, and a damaged card by those
that take a version.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import make_version


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """``canonical/``, ``splits/`` and a version ``v/`` of a small 3-class dataset."""
    from pipeline.config import SplitParams
    from pipeline.datasets import load_dataset
    from pipeline.split import write_splits

    root = tmp_path_factory.mktemp("built")
    make_version(root, per_class=6, ratios={"train": 0.6, "val": 0.2, "test": 0.2})
    write_splits(load_dataset(root / "canonical"), SplitParams(), root / "splits")
    return root


@pytest.fixture
def work(built, tmp_path) -> Path:
    """A fresh copy to damage."""
    for name in ("canonical", "splits", "v"):
        shutil.copytree(built / name, tmp_path / name, symlinks=True)
    return tmp_path


def cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        f"uncaught {result.exception!r}"
    return result.exit_code, result.output


def assert_refused(code: int, output: str, path: Path, *expected: str) -> None:
    lines = output.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in output, output
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    for text in expected:
        assert text in lines[0], lines[0]


def with_line(path: Path, number: int, line: bytes) -> None:
    """Replace line ``number`` (1-based) of a JSON-lines file."""
    lines = path.read_bytes().splitlines(keepends=True)
    lines[number - 1] = line + b"\n"
    path.write_bytes(b"".join(lines))


# (file under the dataset, how to damage it, what the message says)
CANONICAL = {
    "manifest line not JSON": ("manifest.jsonl", lambda p: with_line(p, 3, b'{"id": "x", '),
                               ["line 3: not valid JSON", "re-run `pipeline ingest`"]),
    "manifest line not an object": ("manifest.jsonl", lambda p: with_line(p, 2, b"[1, 2]"),
                                    ["line 2: a JSON list, not an object"]),
    "manifest row without id": ("manifest.jsonl", lambda p: with_line(p, 4, b'{"image": "a.png"}'),
                                ["line 4: not a valid row (KeyError: 'id')"]),
    "manifest row with a numeric id": (
        "manifest.jsonl", lambda p: with_line(p, 1, b'{"id": 5, "image": "a", "width": 1, "height": 1, "channels": 1}'),
        ["line 1: not a valid row (TypeError: 'id' must be a string, not int)"]),
    "manifest not UTF-8": ("manifest.jsonl", lambda p: with_line(p, 5, b'{"id": "caf\xe9"}'),
                           ["line 5: not UTF-8 (byte 0xe9"]),
    "manifest truncated mid-line": ("manifest.jsonl", lambda p: p.write_bytes(p.read_bytes()[:-40]),
                                    ["line 18: not valid JSON"]),
    "classes empty": ("classes.json", lambda p: p.write_bytes(b""), ["the file is empty"]),
    "classes not JSON": ("classes.json", lambda p: p.write_bytes(b'[\n "class0",\n "class1"\n'),
                         ["not valid JSON", "line 4"]),
    "classes not a list": ("classes.json", lambda p: p.write_bytes(b'{"class0": 0}'),
                           ["not a JSON list of class names"]),
    "quarantine line not JSON": ("quarantine.jsonl", lambda p: p.write_bytes(b'{"path": "a", "reason": "r", "detail": ""}\n{oops\n'),
                                 ["line 2: not valid JSON"]),
    "quarantine row of another shape": ("quarantine.jsonl", lambda p: p.write_bytes(b'{"file": "a"}\n'),
                                        ["line 1: not a valid row (TypeError"]),
    "duplicates not JSON": ("duplicates.json", lambda p: p.write_bytes(b'{"groups": [\n'),
                            ["not valid JSON", "line 2"]),
    "duplicates of another shape": ("duplicates.json", lambda p: p.write_bytes(b'{"groups": [["a", "b"]]}'),
                                    ['not {"groups": [{"ids"']),
    "report not an object": ("report.json", lambda p: p.write_bytes(b"[]"), ["not a JSON object"]),
}


@pytest.mark.parametrize("case", sorted(CANONICAL))
def test_stats_on_a_damaged_canonical_dataset(work, case):
    name, damage, expected = CANONICAL[case]
    damage(work / "canonical" / name)
    assert_refused(*cli("stats", work / "canonical"), work / "canonical" / name, *expected)


SPLITS = {
    "empty": (b"", ["the file is empty", "re-run `pipeline split`"]),
    "blank": (b"\n  \n", ["the file is empty"]),
    "not JSON": (b'{\n "seed": 0,\n "assignment": {\n', ["not valid JSON", "line 4"]),
    "no assignment": (b'{"seed": 0}', ["no assignment {sample id: split name}"]),
    "assignment a list": (b'{"assignment": ["train"]}', ["no assignment"]),
    "split not a name": (b'{"assignment": {"a": 1}}', ["no assignment"]),
}


@pytest.mark.parametrize("case", sorted(SPLITS))
def test_a_damaged_splits_json(work, case):
    data, expected = SPLITS[case]
    (work / "splits" / "splits.json").write_bytes(data)
    splits = work / "splits" / "splits.json"
    assert_refused(*cli("stats", work / "canonical", "--splits", work / "splits"), splits, *expected)
    assert_refused(*cli("export", work / "canonical", "--format", "imagefolder", "--splits", work / "splits",
                        "--out", work / "exp"), splits, *expected)
    assert_refused(*cli("augment", work / "canonical", "--splits", work / "splits", "--out", work / "v2"),
                   splits, *expected)


VERSION = {
    "card empty": ("card.json", lambda p: p.write_bytes(b""), ["the file is empty", "re-run `pipeline augment`"]),
    "card not JSON": ("card.json", lambda p: p.write_bytes(p.read_bytes()[:200]), ["not valid JSON", "line "]),
    "card a list": ("card.json", lambda p: p.write_bytes(b"[]"), ["not a JSON object"]),
    "card without image_shape": ("card.json", lambda p: p.write_bytes(b'{"kind": "x"}'), ["not a complete card", "image_shape"]),
    "classes not JSON": ("classes.json", lambda p: p.write_bytes(b"[1"), ["not valid JSON"]),
    "manifest line not JSON": ("manifest.jsonl", lambda p: with_line(p, 2, b"{]"), ["line 2: not valid JSON"]),
    "manifest row without split": ("manifest.jsonl", lambda p: with_line(p, 3, b'{"id": "a#0", "source_id": "a"}'),
                                   ["line 3: not a valid row (KeyError"]),
}


@pytest.mark.parametrize("case", sorted(VERSION))
def test_stats_on_a_damaged_version(work, case):
    name, damage, expected = VERSION[case]
    damage(work / "v" / name)
    assert_refused(*cli("stats", work / "v"), work / "v" / name, *expected)


def test_every_command_that_reads_a_dataset_names_the_damaged_line(work):
    manifest = work / "canonical" / "manifest.jsonl"
    with_line(manifest, 7, b'{"id": "x", "image": ')
    for args in (["stats", work / "canonical"],
                 ["split", work / "canonical", "--out", work / "s2"],
                 ["export", work / "canonical", "--format", "yolo", "--out", work / "exp"],
                 ["augment", work / "canonical", "--splits", work / "splits", "--out", work / "v2"],
                 ["augment", "--preview", "--source", work / "canonical", "--logdir", work / "runs"]):
        assert_refused(*cli(*args), manifest, "line 7: not valid JSON")
    assert not (work / "s2").exists() and not (work / "exp").exists() and not (work / "v2").exists()


def test_every_command_that_reads_a_version_names_the_damaged_card(work):
    card = work / "v" / "card.json"
    card.write_bytes(b'{"image_shape": [16, 16, 1],\n "splits": {\n')
    for args in (["stats", work / "v"],
                 ["export", work / "v", "--format", "imagefolder", "--out", work / "exp"],
                 ["trace", work / "v", "canonical/class0/000.png#0"],
                 ["train", work / "v", "--checkpoint", work / "m.pt", "--logdir", work / "runs",
                  "--metrics", work / "t.json", "--curve", work / "c.csv"]):
        assert_refused(*cli(*args), card, "not valid JSON", "line 3")


@pytest.mark.timeout(30)
def test_special_files_in_a_dataset_are_refused_without_blocking(work):
    manifest = work / "canonical" / "manifest.jsonl"
    manifest.unlink()
    os.mkfifo(manifest)
    assert_refused(*cli("stats", work / "canonical"), manifest, "not-a-regular-file", "fifo")
    splits = work / "splits" / "splits.json"
    splits.unlink()
    os.mkfifo(splits)
    card = work / "v" / "card.json"
    card.unlink()
    os.mkfifo(card)
    assert_refused(*cli("stats", work / "v"), card, "fifo")
    manifest.unlink()
    manifest.write_bytes(b"")  # an empty manifest: no samples, readable
    assert_refused(*cli("stats", work / "canonical", "--splits", work / "splits"), splits, "fifo")
