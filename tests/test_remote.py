"""Sharing dataset versions: `dvc push` / `dvc pull` round trips through a local and an S3 remote.

The S3 remote is moto's S3-compatible server, started by the test on 127.0.0.1
with an ephemeral port (no network, throwaway credentials). Each test builds a
tiny git + DVC repository holding one dataset version, pushes it, clones the git
repository into a fresh directory, pulls, and compares every file's hash.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import AugmentParams, SplitParams
from pipeline.datasets import load_dataset
from pipeline.split import assign_splits
from pipeline.version import write_version
from tests.version_data import digests, make_annotated

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"]


def dvc(*args: str, cwd: Path, env: dict | None = None) -> str:
    import os

    res = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, "DVC_NO_ANALYTICS": "1", **(env or {})}, timeout=120)
    assert res.returncode == 0, f"dvc {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def git(*args: str, cwd: Path) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_repo(root: Path) -> Path:
    """A git + DVC repository with one tracked dataset version at data/version."""
    repo = root / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    dvc("init", "-q", cwd=repo)
    ds = load_dataset(make_annotated(root / "canonical", n=6))
    assignment = assign_splits(ds, SplitParams(ratios={"train": 0.5, "val": 0.25, "test": 0.25}))
    write_version(ds, assignment, AugmentParams(copies=2, pipeline=[{"name": "hflip", "p": 0.5}]),
                  repo / "data" / "version")
    return repo


def round_trip(root: Path, repo: Path, env: dict | None = None) -> None:
    dvc("add", "-q", "data/version", cwd=repo, env=env)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "dataset version", cwd=repo)
    dvc("push", cwd=repo, env=env)
    clone = root / "clone"
    git("clone", "-q", str(repo), str(clone), cwd=root)
    assert not (clone / "data" / "version").exists()
    dvc("pull", cwd=clone, env=env)
    assert digests(clone / "data" / "version") == digests(repo / "data" / "version")
    assert (clone / "data/version/card.json").is_file()


@pytest.mark.slow
def test_push_pull_through_a_local_remote(tmp_path):
    repo = make_repo(tmp_path)
    dvc("remote", "add", "-d", "shared", str(tmp_path / "store"), cwd=repo)
    round_trip(tmp_path, repo)
    assert any((tmp_path / "store").rglob("*"))


@pytest.fixture
def s3_server():
    pytest.importorskip("dvc_s3", reason="dvc-s3 (dev extra) is needed for S3 remotes")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.mark.slow
def test_push_pull_through_an_s3_compatible_server(tmp_path, s3_server):
    import boto3

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="versions")
    repo = make_repo(tmp_path)
    dvc("remote", "add", "-d", "s3", "s3://versions/pipeline", cwd=repo)
    dvc("remote", "modify", "s3", "endpointurl", s3_server, cwd=repo)
    round_trip(tmp_path, repo, env)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="versions")["Contents"]]
    assert keys and all(k.startswith("pipeline/files/md5/") for k in keys)
