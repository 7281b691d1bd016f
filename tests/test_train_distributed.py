"""The same train under torchrun: 2 CPU processes (gloo on 127.0.0.1) match one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, make_version

# seed_cnn has no batch norm, so the only difference between 1 and 2 processes is
# the order of floating-point sums in the gradient all-reduce. Online augmentation
# is keyed per sample, so it is identical on any number of ranks.
PARAMS = """
train:
  model: seed_cnn
  optimizer: sgd
  lr: 0.05
  epochs: 2
  batch_size: 10
  threads: 1
  online_augment: [{name: crop, padding: 2, p: 0.5}]
"""


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    return make_version(tmp_path_factory.mktemp("ddp"), 14, {"train": 0.6, "val": 0.2, "test": 0.2})


def run_stage(launcher: list[str], version, out, params):
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("DVC_EXP_NAME", None)
    cmd = [*launcher, "stages.train", "--params", str(params), "--version", str(version),
           "--checkpoint", str(out / "m.pt"), "--logdir", str(out / "tb"), "--metrics", str(out / "train.json"),
           "--curve", str(out / "curve.csv")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_two_processes_match_one(version, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS)
    one = run_stage([sys.executable, "-m"], version, tmp_path / "one", params)
    assert "1 process(es)" in one.stdout
    two = run_stage([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                     "-m"], version, tmp_path / "two", params)
    assert "2 process(es)" in two.stdout and two.stdout.count("epoch 2:") == 1  # rank 0 alone prints
    a = torch.load(tmp_path / "one/m.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "two/m.pt", weights_only=True)["state_dict"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k
    ma = json.loads((tmp_path / "one/train.json").read_text())
    mb = json.loads((tmp_path / "two/train.json").read_text())
    for k in ("val_accuracy", "train_accuracy", "val_loss", "train_loss"):
        assert mb[k] == pytest.approx(ma[k], abs=1e-4), k  # reduced over ranks, not rank 0's share
    runs = list((tmp_path / "two/tb").iterdir())
    assert len(runs) == 1 and len(list(runs[0].glob("events.out.tfevents.*"))) == 1


def test_two_processes_match_one_on_images_stored_as_files(tmp_path_factory, tmp_path):
    """The streamed path: mixed-size files decoded in loader workers, resized to the median
    size; each rank reads only its shard of every global batch."""
    from tests.test_train_any_version import make_mixed_version

    version = make_mixed_version(tmp_path_factory.mktemp("ddp-files"))
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS + "  workers: 1\n")
    one = run_stage([sys.executable, "-m"], version, tmp_path / "one", params)
    assert "resized to 32x32" in one.stdout
    run_stage([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"],
              version, tmp_path / "two", params)
    a = torch.load(tmp_path / "one/m.pt", weights_only=True)
    b = torch.load(tmp_path / "two/m.pt", weights_only=True)
    assert a["shape"] == b["shape"] == [32, 32, 3]
    for k in a["state_dict"]:
        assert torch.allclose(a["state_dict"][k], b["state_dict"][k], atol=1e-5, rtol=1e-4), k
    ma = json.loads((tmp_path / "one/train.json").read_text())
    mb = json.loads((tmp_path / "two/train.json").read_text())
    for k in ("val_accuracy", "train_accuracy", "val_loss", "train_loss"):
        assert mb[k] == pytest.approx(ma[k], abs=1e-4), k
